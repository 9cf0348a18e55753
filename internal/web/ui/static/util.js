// Small helpers shared by the modules.

// fmtTime formats seconds as m:ss or h:mm:ss.
export function fmtTime(s) {
  if (!Number.isFinite(s) || s < 0) s = 0;
  s = Math.floor(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor(s / 60) % 60;
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

// el builds an element: el("a", {href: "/x", class: "name"}, "text", child…).
// Text goes in as text nodes, never as HTML.
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c);
  }
  return e;
}

// announce tells screen readers what just happened (Copied, Queued).
export function announce(text) {
  const s = document.getElementById("status");
  if (!s) return;
  s.textContent = "";
  // A new text node in a live region is read even when it repeats.
  setTimeout(() => { s.textContent = text; }, 50);
}

// flash shows text on a button for a moment, then its own label again.
export function flash(button, text) {
  const old = button.dataset.label ?? button.textContent;
  button.dataset.label = old;
  button.textContent = text;
  clearTimeout(button._flash);
  button._flash = setTimeout(() => {
    button.textContent = old;
    delete button.dataset.label;
  }, 1500);
  announce(text);
}

// isTyping: the key belongs to a field the user types or drags in.
export function isTyping(target) {
  return !!(target && target.closest &&
    target.closest("input, textarea, select, [contenteditable]:not([contenteditable=false])"));
}

// handlesSpace: the element does something of its own with the space bar.
export function handlesSpace(target) {
  return isTyping(target) || !!(target && target.closest &&
    target.closest("button, summary, video, audio, [role=button]"));
}
