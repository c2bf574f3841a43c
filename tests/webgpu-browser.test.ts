import { existsSync } from "node:fs";
import { type Browser, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundlePage } from "./browser/build.ts";
import type { FixtureResult } from "./browser/page.ts";
import { type PageServer, servePage } from "./browser/server.ts";
import { REFERENCE_DIR, referenceFiles } from "./helpers/parity.ts";

// Headless Chromium (Debian's `chromium`, see .ci/webgpu-packages.txt) runs the WebGPU model on
// its SwiftShader adapter; the page itself applies the fixture rule (checkRun) to every run.
// A missing browser or adapter fails the test: CI installs both.
const CHROMIUM = process.env.PETREL_CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = ["--enable-unsafe-webgpu", "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking"];

describe("webgpu model in headless Chromium matches the fixtures", () => {
  let server: PageServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set PETREL_CHROMIUM)`);
    server = await servePage(await bundlePage(), REFERENCE_DIR);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    page = await browser.newPage();
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(server.url);
    await page.waitForFunction(() => "petrelRunFixture" in globalThis);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  for (const { model } of referenceFiles()) {
    it(model, async () => {
      const result: FixtureResult = await page.evaluate((m) => (globalThis as unknown as { petrelRunFixture(m: string): Promise<FixtureResult> }).petrelRunFixture(m), model);
      expect(result.adapter).toContain("navigator.gpu");
      expect(result.mismatch).toBeNull();
      expect(pageErrors).toEqual([]);
    });
  }
});
