// Drives kci serve's web UI in headless Chromium (playwright-core), for test_serve_ui.py.
// usage: node serve_ui.js URL FAILED_BUILD LIVE_BUILD LIVE_JOB ADMIN_TOKEN
// Prints one JSON array of {ok, what, detail} on stdout.
"use strict";
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

async function main() {
  const [url, failedBuild, liveBuild, liveJob, adminToken] = process.argv.slice(2);
  const results = [];
  const check = (ok, what, detail) => results.push({ ok: !!ok, what, detail: detail || "" });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
  try {
    // The lists work without JavaScript.
    const plain = await browser.newContext({ javaScriptEnabled: false });
    let page = await plain.newPage();
    const resp = await page.goto(url + "/");
    const csp = resp.headers()["content-security-policy"] || "";
    check(resp.status() === 200, "the build list loads", String(resp.status()));
    check(/default-src 'none'/.test(csp) && !/unsafe-inline/.test(csp),
      "the page carries a strict Content-Security-Policy", csp);
    const rows = await page.locator("table.builds tbody tr").count();
    check(rows >= 2, "the build list shows the builds, without JavaScript", String(rows));
    check(await page.locator("table.builds tr.row-failed").count() >= 1,
      "a failed build is marked failed in the list");
    await page.goto(`${url}/builds/${failedBuild}`);
    check(await page.locator("table.jobs tr.row-failed .st-failed").count() === 1,
      "the failing job is marked failed on its build's page",
      await page.locator("table.jobs").innerText());
    await plain.close();

    // A running job's log follows live, without a reload.
    const ctx = await browser.newContext();
    page = await ctx.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto(`${url}/builds/${liveBuild}/jobs/${encodeURIComponent(liveJob)}`);
    await page.evaluate(() => { window.kciSamePage = 1; });
    const first = await page.locator("#log").textContent();
    check(first.includes("live-line-1") && !first.includes("live-line-last"),
      "the job page opens while the job runs", first.slice(-300));
    const seen = (first.match(/^live-line-\d+$/gm) || []).length;
    const later = `live-line-${seen + 5}`;
    await page.waitForFunction(
      (want) => document.getElementById("log").textContent.split("\n").includes(want),
      later, { timeout: 120000 });
    check(await page.evaluate(() => window.kciSamePage === 1),
      "log lines of the running job appear live, without a reload", later);
    const cancel = await fetch(`${url}/api/v1/builds/${liveBuild}/cancel`, {
      method: "POST", headers: { Authorization: `Bearer ${adminToken}` },
    });
    check(cancel.status === 200, "the build is canceled with the admin token",
      String(cancel.status));
    await page.waitForFunction(
      () => document.getElementById("job-status").textContent === "canceled",
      null, { timeout: 60000 });
    check(true, "the job's status turns canceled on the open page");
    const text = await page.locator("#log").textContent();
    check(text.includes("<script>window.kciPwned=1</script>"),
      "a log line with <script> shows as text", text.slice(0, 400));
    check(await page.evaluate(() => window.kciPwned === undefined) &&
      await page.locator("#log script").count() === 0, "and never runs");
    check(await page.locator("#log span.c31", { hasText: "red-text" }).count() >= 1,
      "ANSI colours are rendered");
    const lines = text.split("\n").filter((l) => /^live-line-\d+$/.test(l));
    check(lines.length >= seen + 5 && lines.every((l, i) => l === `live-line-${i + 1}`),
      "every live line shows once, in order", lines.join(","));
    check(errors.length === 0, "no errors in the browser console", errors.join("; "));
    await ctx.close();
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(results));
}

main().catch((e) => { console.error(e); process.exit(2); });
