// The run page, live: follows the run's server-sent events, keeps the elapsed
// timer going, and once the run has ended reloads the page's live area so that
// Rerun, New Inputs and the result appear. Also sizes the result frame.

const LABELS = {
  queued: "Queued",
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  cancelled: "Cancelled",
};
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

// The result frame reports its height; these keep a broken or hostile result
// from collapsing the frame or stretching the page without end.
const MIN_FRAME_HEIGHT = 48;
const MAX_FRAME_HEIGHT = 20000;

function formatDuration(seconds) {
  // The same wording as the server's `duration` filter, in whole seconds.
  const whole = Math.max(0, Math.floor(seconds));
  if (whole < 60) return `${whole} s`;
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) return `${minutes} min ${whole % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

class ElapsedTimer {
  constructor(output) {
    this.output = output;
    this.handle = null;
  }

  // `seconds` is how long the run had been going when the page was made; the
  // browser only adds what passed since, so its own clock may be wrong.
  start(seconds) {
    this.stop();
    const origin = performance.now() - seconds * 1000;
    const tick = () => {
      this.output.textContent = formatDuration((performance.now() - origin) / 1000);
    };
    tick();
    this.handle = setInterval(tick, 1000);
  }

  stop() {
    if (this.handle !== null) clearInterval(this.handle);
    this.handle = null;
  }
}

class LiveRun {
  constructor(root) {
    this.root = root;
    this.lastSeq = Number(root.dataset.lastSeq || 0);
    this.state = root.dataset.state;
    this.timer = new ElapsedTimer(root.querySelector("[data-elapsed-value]"));
    this.source = null;
  }

  start() {
    const elapsed = this.root.dataset.elapsed;
    if (this.state === "running" && elapsed !== "") {
      this.timer.start(Number(elapsed));
    }
    this.connect();
  }

  connect() {
    const url = `${this.root.dataset.eventsUrl}?after=${this.lastSeq}`;
    this.source = new EventSource(url);
    for (const kind of ["state", "status", "log"]) {
      this.source.addEventListener(kind, (event) => this.receive(event));
    }
    // EventSource retries by itself after a dropped connection; it gives up
    // only when the server refuses, and then the page falls back to reloading.
    this.source.addEventListener("error", () => {
      if (this.source.readyState === EventSource.CLOSED && !FINISHED.has(this.state)) {
        setTimeout(() => window.location.reload(), 3000);
      }
    });
  }

  receive(event) {
    const payload = JSON.parse(event.data);
    if (payload.seq <= this.lastSeq) return; // seen before a reconnect
    this.lastSeq = payload.seq;
    this.appendLog(payload);
    if (payload.kind === "state") this.showState(payload);
    if (payload.kind === "status") this.showStatus(payload);
    if (payload.child_run_id) this.refreshChildRuns();
  }

  showState(payload) {
    const state = payload.state;
    this.state = state;
    this.root.dataset.state = state;
    this.setText("[data-state-label]", LABELS[state] || state);
    this.setText("[data-status-message]", payload.message);
    const card = this.root.querySelector(".status-card");
    card.className = card.className.replace(/\bstate-\w+/, `state-${state}`);

    if (state === "running") this.timer.start(0);
    if (FINISHED.has(state)) {
      this.timer.stop();
      this.source.close();
      this.reloadLiveArea();
    }
  }

  showStatus(payload) {
    this.setText("[data-status-message]", payload.message);
    const row = this.root.querySelector("[data-progress]");
    if (typeof payload.progress !== "number") return;
    const value = Math.min(100, Math.max(0, payload.progress));
    row.hidden = false;
    row.querySelector("progress").value = value;
    this.setText("[data-progress-value]", `${Math.round(value)} %`);
  }

  appendLog(payload) {
    const list = this.root.querySelector("[data-log]");
    const line = document.createElement("li");
    line.className = `log-line log-${payload.level || "info"}`;
    const time = document.createElement("time");
    time.dateTime = payload.at;
    time.textContent = String(payload.at).slice(11, 19);
    const message = document.createElement("span");
    message.className = "log-message";
    message.textContent = payload.message;
    line.append(time, " ", message);
    list.append(line);
    const count = this.root.querySelector("[data-log-count]");
    count.textContent = String(Number(count.textContent) + 1);
  }

  setText(selector, text) {
    const element = this.root.querySelector(selector);
    if (element) element.textContent = text;
  }

  // The page as the server renders it now, or null when it cannot be had.
  async fetchLiveArea() {
    try {
      const response = await fetch(window.location.href, {
        headers: { Accept: "text/html" },
        credentials: "same-origin",
      });
      if (!response.ok) return null;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      return page.querySelector("[data-run-live]");
    } catch {
      return null;
    }
  }

  // A run_flow step started a run: the server's list of child runs has its
  // link (or not, for a run this user may not open), so take the list from
  // there rather than build one here.
  async refreshChildRuns() {
    const fresh = await this.fetchLiveArea();
    const list = fresh?.querySelector("[data-child-runs]");
    if (!list || !this.root.isConnected) return;
    const current = this.root.querySelector("[data-child-runs]");
    if (current) {
      current.replaceWith(list);
    } else {
      this.root.querySelector(".details-card")?.before(list);
    }
  }

  // The server renders the finished run (final duration, Rerun, New Inputs,
  // the result); swapping in its live area keeps the page where it is.
  async reloadLiveArea() {
    const hadFocus = this.root.contains(document.activeElement);
    const logOpen = this.root.querySelector(".run-log")?.open;
    const fresh = await this.fetchLiveArea();
    if (fresh === null) {
      window.location.reload();
      return;
    }
    this.root.replaceWith(fresh);
    if (logOpen) fresh.querySelector(".run-log").open = true;
    document.title = document.title.replace(/^[^:]*:/, `${LABELS[this.state]}:`);
    watchResultFrame(fresh);
    if (hadFocus) fresh.querySelector("[data-state-label]").focus();
    fresh.dispatchEvent(new CustomEvent("run:finished", { bubbles: true }));
  }
}

function watchResultFrame(root) {
  const frame = root.querySelector("[data-result-frame]");
  if (!frame) return;
  window.addEventListener("message", (event) => {
    // Only the frame's own document may size it.
    if (event.source !== frame.contentWindow) return;
    const height = Number(event.data && event.data.flowdeskResultHeight);
    if (!Number.isFinite(height)) return;
    const clamped = Math.min(MAX_FRAME_HEIGHT, Math.max(MIN_FRAME_HEIGHT, height));
    frame.style.height = `${Math.ceil(clamped)}px`;
    frame.dataset.sized = "true";
  });
  // The frame may have loaded, and reported, before this module ran (a
  // finished run's page renders the frame at once). Asking now reaches a
  // loaded document; one still loading reports by itself once it has.
  const ask = () => frame.contentWindow?.postMessage({ flowdeskAskHeight: true }, "*");
  frame.addEventListener("load", ask);
  ask();
}

const root = document.querySelector("[data-run-live]");
if (root) {
  watchResultFrame(root);
  if (root.dataset.finished !== "true" && "EventSource" in window) {
    new LiveRun(root).start();
  }
}
