import { GatewayError } from '../errors.js';

/** MLLP (HL7 v2 transport, release 2 block format): <VT> message <FS><CR>. */
export const START_BLOCK = 0x0b;
export const END_BLOCK = 0x1c;
export const CARRIAGE_RETURN = 0x0d;

/** Frames one message. The frame bytes must not occur inside it (escapeHl7 writes them as \X0B\ and \X1C\). */
export function frameMessage(message: string, encoding: BufferEncoding = 'utf8'): Buffer {
  const body = Buffer.from(message, encoding);
  if (body.includes(START_BLOCK) || body.includes(END_BLOCK)) {
    throw new GatewayError(
      'MLLP_FRAME_BYTES_IN_MESSAGE',
      'the HL7 message contains an MLLP frame byte (0x0B or 0x1C) and cannot be framed',
    );
  }
  return Buffer.concat([Buffer.from([START_BLOCK]), body, Buffer.from([END_BLOCK, CARRIAGE_RETURN])]);
}

export interface DeframeResult {
  /** Complete frame bodies, without the frame bytes, in arrival order. */
  frames: Buffer[];
  /** The frame being read grew past the limit; it was dropped and the caller should drop the connection. */
  tooLarge: boolean;
}

/**
 * Cuts a byte stream into MLLP frames. Lenient the way receivers in the field need: bytes between frames
 * (the <CR> after <FS>, stray newlines) are skipped, a frame may end with <FS> alone, and a <VT> inside a
 * frame starts the frame again (the bytes before it were not a complete message).
 */
export class MllpDeframer {
  private parts: Buffer[] = [];
  private size = 0;
  private inFrame = false;

  constructor(private readonly maxFrameBytes = 1024 * 1024) {}

  push(chunk: Buffer): DeframeResult {
    const frames: Buffer[] = [];
    let rest = chunk;
    while (rest.length > 0) {
      if (!this.inFrame) {
        const start = rest.indexOf(START_BLOCK);
        if (start < 0) break;
        this.inFrame = true;
        this.parts = [];
        this.size = 0;
        rest = rest.subarray(start + 1);
        continue;
      }
      const end = rest.indexOf(END_BLOCK);
      const restart = rest.indexOf(START_BLOCK);
      if (restart >= 0 && (end < 0 || restart < end)) {
        this.parts = [];
        this.size = 0;
        rest = rest.subarray(restart + 1);
        continue;
      }
      const body = end < 0 ? rest : rest.subarray(0, end);
      this.parts.push(body);
      this.size += body.length;
      if (this.size > this.maxFrameBytes) {
        this.reset();
        return { frames, tooLarge: true };
      }
      if (end < 0) break;
      frames.push(Buffer.concat(this.parts));
      this.reset();
      rest = rest.subarray(end + 1);
    }
    return { frames, tooLarge: false };
  }

  reset(): void {
    this.parts = [];
    this.size = 0;
    this.inFrame = false;
  }
}
