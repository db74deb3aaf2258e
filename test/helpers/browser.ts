// Chromium for the browser tests: the system package (installed by .ci/run),
// driven by playwright-core, with everything that would phone home turned off.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type LaunchOptions } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export const launchOptions: LaunchOptions = {
  executablePath: CHROMIUM_PATH,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-quic',
    '--no-first-run',
    '--disable-component-update',
    '--disable-sync',
  ],
};

/** Launches Chromium, waiting up to `waitMs` for the binary to appear (apt may still be installing it). */
export async function launchBrowser(waitMs = 120_000): Promise<Browser> {
  const deadline = Date.now() + waitMs;
  while (!existsSync(CHROMIUM_PATH)) {
    if (Date.now() > deadline) throw new Error(`${CHROMIUM_PATH} is missing (install it: apt-get install -y chromium)`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  return chromium.launch(launchOptions);
}
