// What the page benchmarks measure in the page: frames drawn (requestAnimationFrame), their
// rate and longest gap, and the marked sections of bench/RESULTS.md they write.
const fs = require('fs');
const path = require('path');

const RESULTS = path.join(__dirname, '..', '..', 'bench', 'RESULTS.md');

/** Frames (requestAnimationFrame callbacks) and message counts (in the trace, in the DOM),
 * recorded in the page; with `follow`, the diagram is scrolled to its newest message every
 * 250 ms. */
async function startFrameCounter(page, follow = false) {
  await page.evaluate((follow) => {
    const rec = { frames: [], counts: [], running: true };
    window.__bench = rec;
    const tick = (t) => {
      if (!rec.running) return;
      rec.frames.push(t);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    rec.sampler = setInterval(() => {
      const svg = document.querySelector('[data-testid=sequence-diagram]');
      const inDom = document.querySelectorAll('[data-testid=message]');
      rec.counts.push([performance.now(), Number(svg.dataset.totalMessages), inDom.length]);
      const box = document.querySelector('.diagram-scroll');
      if (follow && inDom.length > 0) {
        const below = inDom[inDom.length - 1].getBoundingClientRect().bottom - box.getBoundingClientRect().bottom;
        if (below > 0) box.scrollTop += below + 40;
      }
    }, 250);
  }, follow);
}

async function stopFrameCounter(page) {
  return page.evaluate(() => {
    const rec = window.__bench;
    rec.running = false;
    clearInterval(rec.sampler);
    return { frames: rec.frames, counts: rec.counts };
  });
}

/** Mean fps over the recording, the worst full 1-second window, and the longest frame. */
function frameStats(frames) {
  const span = frames[frames.length - 1] - frames[0];
  const mean = ((frames.length - 1) * 1000) / span;
  let worst = Infinity;
  for (let i = 0, j = 0; i < frames.length && frames[i] + 1000 <= frames[frames.length - 1]; i++) {
    while (j < frames.length && frames[j] < frames[i] + 1000) j++;
    worst = Math.min(worst, j - i);
  }
  let longest = 0;
  for (let i = 1; i < frames.length; i++) longest = Math.max(longest, frames[i] - frames[i - 1]);
  return { mean, worst, longest, seconds: span / 1000 };
}

/** Replaces (or appends) the section of bench/RESULTS.md marked `<!-- name:begin -->`. */
function writeSection(name, body) {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const section = `${begin}\n${body.trim()}\n${end}`;
  const text = fs.existsSync(RESULTS) ? fs.readFileSync(RESULTS, 'utf8') : '# Benchmark results\n';
  const at = text.indexOf(begin);
  const out =
    at >= 0
      ? text.slice(0, at) + section + text.slice(text.indexOf(end) + end.length)
      : `${text.trimEnd()}\n\n${section}\n`;
  fs.writeFileSync(RESULTS, out);
}

module.exports = { startFrameCounter, stopFrameCounter, frameStats, writeSection, RESULTS };
