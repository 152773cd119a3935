"""Clipped and overlapping text on the wallboard, found from element bounds in the browser.

For every piece of text on screen the script measures where the text itself is laid out (a DOM Range
over the element's contents: the full run of glyphs, also where CSS cuts it off with an ellipsis) and
reports it when it reaches outside any ancestor that clips (overflow other than visible), outside the
window, or into the text of another element. Text hidden on purpose (display: none, an empty tag) is
not on screen and is not measured.
"""

from __future__ import annotations

from tests.browser import Page

# Sizes of the screens a wallboard is shown on: a small laptop, a 1600×900 monitor, a full-HD TV.
SCREEN_SIZES = ((1280, 720), (1600, 900), (1920, 1080))

LAYOUT_SCRIPT = """(() => {
  const SLACK = 1;  // px: sub-pixel rounding of the layout
  const canvas = document.createElement('canvas').getContext('2d');
  const describe = (node) => {
    const tile = node.closest('[data-queue]');
    const where = tile ? `queue ${JSON.stringify(tile.getAttribute('data-queue'))} ` : '';
    const name = node.getAttribute('data-field') || node.className || node.id || node.tagName.toLowerCase();
    return `${where}${name} ${JSON.stringify(node.textContent.trim().slice(0, 40))}`;
  };
  const visible = (node) => {
    for (let n = node; n && n !== document.documentElement; n = n.parentElement) {
      const style = getComputedStyle(n);
      if (style.display === 'none' || style.visibility === 'hidden' || style.opacity === '0') return false;
    }
    const rect = node.getBoundingClientRect();
    return rect.width > 0 && rect.height > 0;
  };
  // The ink of an element's own text: across, the glyphs' advance (a Range keeps the whole run, also
  // where an ellipsis cuts it); up and down, the glyphs' real extent around the baseline, since the
  // line box of a large figure with line-height 1 is shorter than the font's ascent plus descent.
  const inkOf = (node) => {
    const style = getComputedStyle(node);
    canvas.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    let ink = null;
    for (const child of node.childNodes) {
      if (child.nodeType !== Node.TEXT_NODE || !child.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(child);
      for (const line of range.getClientRects()) {
        const metrics = canvas.measureText(child.textContent.trim());
        const baseline = line.top + metrics.fontBoundingBoxAscent
          + (line.height - metrics.fontBoundingBoxAscent - metrics.fontBoundingBoxDescent) / 2;
        const box = { left: line.left, right: line.right, top: baseline - metrics.actualBoundingBoxAscent,
                      bottom: baseline + metrics.actualBoundingBoxDescent };
        ink = ink === null ? box : { left: Math.min(ink.left, box.left), right: Math.max(ink.right, box.right),
                                     top: Math.min(ink.top, box.top), bottom: Math.max(ink.bottom, box.bottom) };
      }
    }
    return ink;
  };
  const texts = [...document.body.querySelectorAll('*')].filter((node) =>
    [...node.childNodes].some((child) => child.nodeType === Node.TEXT_NODE && child.textContent.trim())
    && visible(node));
  const problems = [];
  const boxes = [];
  for (const node of texts) {
    const ink = inkOf(node);
    if (ink === null) continue;
    boxes.push({ node, ink });
    if (ink.left < -SLACK || ink.top < -SLACK || ink.right > innerWidth + SLACK || ink.bottom > innerHeight + SLACK) {
      problems.push(`off screen: ${describe(node)}`);
      continue;
    }
    if (node.scrollWidth > node.clientWidth + SLACK && getComputedStyle(node).overflowX !== 'visible') {
      problems.push(`cut short: ${describe(node)} (${node.scrollWidth} px of text in ${node.clientWidth} px)`);
      continue;
    }
    for (let n = node; n && n !== document.body; n = n.parentElement) {
      const style = getComputedStyle(n);
      if (style.overflowX === 'visible' && style.overflowY === 'visible') continue;
      const clip = n.getBoundingClientRect();
      if (ink.left < clip.left - SLACK || ink.right > clip.right + SLACK || ink.top < clip.top - SLACK
          || ink.bottom > clip.bottom + SLACK) {
        problems.push(`clipped: ${describe(node)} (ink ${Math.round(ink.left)}..${Math.round(ink.right)} x `
          + `${Math.round(ink.top)}..${Math.round(ink.bottom)} in ${Math.round(clip.left)}..${Math.round(clip.right)}`
          + ` x ${Math.round(clip.top)}..${Math.round(clip.bottom)})`);
        break;
      }
    }
  }
  for (let i = 0; i < boxes.length; i += 1) {
    for (let j = i + 1; j < boxes.length; j += 1) {
      const a = boxes[i], b = boxes[j];
      if (a.node.contains(b.node) || b.node.contains(a.node)) continue;
      const width = Math.min(a.ink.right, b.ink.right) - Math.max(a.ink.left, b.ink.left);
      const height = Math.min(a.ink.bottom, b.ink.bottom) - Math.max(a.ink.top, b.ink.top);
      if (width > SLACK && height > SLACK) problems.push(`overlap: ${describe(a.node)} and ${describe(b.node)}`);
    }
  }
  return problems;
})()"""


# The page fits its text again in the frame after a layout: measure two frames later.
SETTLED = "new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))"


async def layout_problems(page: Page) -> list[str]:
    """Every piece of text on the page that is clipped, off screen or overlapping other text."""
    await page.evaluate(SETTLED)
    return list(await page.evaluate(LAYOUT_SCRIPT))
