import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's chromium (installed by .ci/run), driven by playwright-core: playwright's own browser download does not
 * work on these machines, so the executable is named. `--no-sandbox` because CI runs as root.
 */
export const CHROMIUM = process.env.CXR_GATEWAY_TEST_CHROMIUM ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `no chromium at ${CHROMIUM}: install Debian's chromium (.ci/run does) or set CXR_GATEWAY_TEST_CHROMIUM`,
    );
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
}
