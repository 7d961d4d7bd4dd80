/**
 * One self-overwriting status line for a terminal; silent when the stream is not a TTY (logs and pipes
 * get the JSON lines only).
 */
export class ProgressBar {
  private lastWrite = 0;
  private visible = false;

  constructor(
    private readonly stream: { isTTY?: boolean; columns?: number; write(chunk: string): boolean },
    private readonly width = 28,
  ) {}

  get enabled(): boolean {
    return this.stream.isTTY === true;
  }

  /** Redraws at most ~10 times a second, always for the last step (fraction 1). */
  update(label: string, fraction: number, detail = ''): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (fraction < 1 && now - this.lastWrite < 100) return;
    this.lastWrite = now;
    const filled = Math.round(Math.max(0, Math.min(1, fraction)) * this.width);
    const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(this.width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${detail}`;
    const columns = this.stream.columns ?? 120;
    this.stream.write(`\r\x1b[2K${line.slice(0, columns - 1)}`);
    this.visible = true;
  }

  /** Clears the line so that ordinary output starts at column 0. */
  clear(): void {
    if (!this.enabled || !this.visible) return;
    this.stream.write('\r\x1b[2K');
    this.visible = false;
  }
}
