// The home page's scan line: Rescan starts a scan (POST /api/scan), and
// the line follows /api/scan every second while one runs.
import { fmtTime, announce } from "./util.js";

const n = (v) => Number(v || 0).toLocaleString("en");

function scanText(p) {
  if (p.running) {
    let s = "Scanning" + (p.library ? " " + p.library : "") +
      `: ${n(p.files)} files, ${n(p.probed)} probed, ${n(p.unchanged)} unchanged`;
    if (p.queued > 0) s += `, ${n(p.queued)} queued`;
    if (p.eta_ns > 0) s += `, about ${fmtTime(p.eta_ns / 1e9)} left`;
    return s + ".";
  }
  if (p.finished) {
    const d = new Date(p.finished).toISOString().slice(0, 16).replace("T", " ");
    return `Last scan finished ${d} UTC: ${n(p.files)} files, ${n(p.probed)} probed, ${n(p.failed)} failed, ${n(p.removed)} removed.`;
  }
  return "No scan yet.";
}

let polling = false;

async function poll(line) {
  if (polling) return;
  polling = true;
  try {
    while (line.isConnected) {
      const res = await fetch("/api/scan", { headers: { Accept: "application/json" } });
      if (!res.ok) break;
      const p = await res.json();
      show(line, p);
      if (!p.running) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
  } catch { /* the next page view polls again */ }
  polling = false;
}

function show(line, p) {
  line.textContent = scanText(p);
  line.dataset.running = String(p.running);
  const b = document.querySelector("[data-testid=rescan]");
  if (b) b.disabled = p.running;
}

export function initHome() {
  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!form.matches("form[data-rescan]")) return;
    e.preventDefault();
    const line = document.querySelector("[data-testid=scan-progress]");
    const res = await fetch("/api/scan", { method: "POST", headers: { Accept: "application/json" } });
    if (res.status === 202 || res.status === 409) {
      announce(res.status === 202 ? "Scan started" : "A scan is already running");
      if (line) {
        show(line, await res.json());
        poll(line);
      }
    } else {
      announce("Cannot start a scan");
    }
  });
  const check = () => {
    const line = document.querySelector("[data-testid=scan-progress]");
    if (line && line.dataset.running === "true") poll(line);
  };
  document.addEventListener("mustserv:page", check);
  check();
}
