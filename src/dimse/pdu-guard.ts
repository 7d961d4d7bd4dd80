/**
 * Watches the raw byte stream of one connection and says when it stops looking like the DICOM upper
 * layer protocol, before the PDU parser buffers a bogus multi-gigabyte "PDU": garbage on the port and
 * oversized PDUs are cut off at their header.
 */
export class PduGuard {
  private header = Buffer.alloc(0);
  private remaining = 0;
  private seenFirst = false;

  constructor(private readonly maxPduLength: number) {}

  /** Returns why the connection must be dropped, or undefined while the stream is well-formed. */
  inspect(chunk: Buffer): string | undefined {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - pos);
        this.remaining -= take;
        pos += take;
        continue;
      }
      const need = 6 - this.header.length;
      this.header = Buffer.concat([this.header, chunk.subarray(pos, pos + need)]);
      pos += Math.min(need, chunk.length - pos);
      if (this.header.length < 6) return undefined;
      const type = this.header.readUInt8(0);
      const length = this.header.readUInt32BE(2);
      this.header = Buffer.alloc(0);
      const problem = this.checkHeader(type, length);
      if (problem !== undefined) return problem;
      this.remaining = length;
    }
    return undefined;
  }

  /**
   * Judges one PDU header (type and length) in stream order; PduStreamParser calls this for every PDU it
   * reads, `inspect` for the headers it finds in raw chunks.
   */
  checkHeader(type: number, length: number): string | undefined {
    const problem = this.check(type, length);
    if (problem === undefined) this.seenFirst = true;
    return problem;
  }

  private check(type: number, length: number): string | undefined {
    if (!this.seenFirst && type !== 0x01) {
      return `first PDU has type 0x${type.toString(16).padStart(2, '0')}, not an A-ASSOCIATE-RQ: not a DICOM peer`;
    }
    if (type < 0x01 || type > 0x07) return `unknown PDU type 0x${type.toString(16).padStart(2, '0')}`;
    // A little slack over the negotiated maximum tolerates peers that count the PDV header in it.
    const limit = type === 0x04 ? this.maxPduLength + 16 : type === 0x01 ? 1024 * 1024 : 1024;
    if (length > limit) return `PDU of type 0x0${type} with ${length} bytes exceeds the limit of ${limit}`;
    return undefined;
  }
}
