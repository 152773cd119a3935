// Queue wallboard: polls the worker's /api/queues and shows one tile per queue; with ?group=NAME (or
// ?groups for all of them) it polls /api/groups and shows the group's tile instead.
// Every string that comes from the API is written with textContent or setAttribute, never parsed as HTML.
// Formatting rules are documented in docs/wallboard.md; the end-to-end test applies the same rules.
"use strict";

(() => {
  // Relative, so the page also works behind a reverse proxy that mounts the worker under a path.
  const VIEW = groupView(new URLSearchParams(window.location.search));
  const API_PATH = VIEW.apiPath;
  const POLL_INTERVAL_MS = 3000;
  // A worker that accepts the connection but never answers must not leave the last numbers on screen.
  const FETCH_TIMEOUT_MS = 5000;
  // Service Level this many percentage points (or fewer) below target is amber; further below is red.
  const SL_AMBER_BAND_POINTS = 5;
  // Absorbs binary floating point noise (0.29 * 100 = 28.999999999999996) in comparisons and truncation.
  const EPSILON = 1e-9;
  const DEFAULT_STALE_AFTER_SECONDS = 120;
  // The window behind ASA and abandonment; Service Level is shown for three windows at once.
  const RATES_WINDOW = "today";
  const RATES_WINDOW_LABEL = "today";
  const DASH = "\u2014";

  const SERVICE_LEVEL_BOXES = [
    { field: "sl-interval", window: "interval", label: "Interval", primary: true },
    { field: "sl-30m", window: "30m", label: "Last 30 min", primary: false },
    { field: "sl-today", window: "today", label: "Today", primary: false },
  ];

  const STATS = [
    { field: "waiting", label: "Waiting", unit: "" },
    { field: "callbacks", label: "Callbacks waiting", unit: "" },
    { field: "oldest", label: "Oldest wait", unit: "" },
    { field: "asa", label: `ASA ${RATES_WINDOW_LABEL}`, unit: "s", window: RATES_WINDOW },
    { field: "abandon", label: `Abandoned ${RATES_WINDOW_LABEL}`, unit: "%", window: RATES_WINDOW },
  ];

  // ---- the customer's journey (docs/wallboard.md, "Customer journey"): tiles of their own ----

  const JOURNEY_STATS = [
    { field: "repeat-30m", label: "Repeat calls 30 min", unit: "%", window: "30m", key: "repeat_contact_rate",
      format: (value) => formatPercent(value) },
    { field: "nps-today", label: "NPS today", unit: "", window: "today", key: "nps_score",
      format: (value) => formatScore(value) },
  ];

  function buildJourneyStats(queue) {
    return JOURNEY_STATS.map((stat) => {
      const cell = element("div", "stat stat-journey", { "data-stat": stat.field });
      const label = element("div", "label");
      label.textContent = stat.label;
      const figure = element("div", "figure");
      figure.append(valueElement(queue, stat.field, { "data-window": stat.window }));
      if (stat.unit) {
        const unit = element("span", "unit");
        unit.textContent = stat.unit;
        figure.append(unit);
      }
      cell.append(label, figure);
      return cell;
    });
  }

  function updateJourneyStats(tile, queueData) {
    for (const stat of JOURNEY_STATS) {
      setValue(tile, stat.field, stat.format(windowOf(queueData, stat.window)[stat.key]));
    }
  }

  // An NPS runs from -100 to 100: whole points, rounded half up, with a true minus sign.
  function formatScore(value) {
    if (!isNumber(value)) return DASH;
    const whole = Math.floor(value + 0.5);
    return whole < 0 ? `\u2212${-whole}` : String(whole);
  }

  // ---- the group view: ?group=NAME shows one group, ?groups every group this worker owns ----

  function groupView(params) {
    if (params.has("group") && params.get("group") !== "") {
      return { kind: "group", name: params.get("group"), apiPath: "api/groups" };
    }
    if (params.has("groups")) return { kind: "group", name: null, apiPath: "api/groups" };
    return { kind: "queue", name: null, apiPath: "api/queues" };
  }

  // The groups' answer in the shape of the queues' one: each group a tile named by its group.
  function asQueuesPayload(payload) {
    if (VIEW.kind !== "group") return payload;
    if (!payload || typeof payload !== "object" || !Array.isArray(payload.groups)) {
      throw new Error("the answer has no \"groups\" list");
    }
    const groups = payload.groups.filter((entry) => entry && (VIEW.name === null || entry.group === VIEW.name));
    return { ...payload, queues: groups.map((entry) => ({ ...entry, queue: entry.group })) };
  }

  // ---- formatting (docs/wallboard.md, "Formatting") ----

  function isNumber(value) {
    return typeof value === "number" && Number.isFinite(value);
  }

  function pad2(n) {
    return String(n).padStart(2, "0");
  }

  // Truncated, so a queue at 79.6 % against an 80 % target never reads "80".
  function formatServiceLevel(ratio) {
    return isNumber(ratio) ? String(Math.floor(ratio * 100 + EPSILON)) : DASH;
  }

  function formatPercent(ratio) {
    return isNumber(ratio) ? String(Math.floor(ratio * 100 + 0.5)) : DASH;
  }

  function formatWholeSeconds(seconds) {
    return isNumber(seconds) ? String(Math.floor(seconds + 0.5)) : DASH;
  }

  function formatCount(value) {
    return Number.isInteger(value) ? String(value) : DASH;
  }

  function formatPlainNumber(value) {
    return isNumber(value) ? String(value) : DASH;
  }

  // A wait clock counts whole seconds elapsed, like the ACD's own: 59.9 s is still 0:59.
  function formatWait(seconds) {
    if (!isNumber(seconds)) return DASH;
    const total = Math.max(0, Math.floor(seconds));
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const rest = total % 60;
    return hours > 0 ? `${hours}:${pad2(minutes)}:${pad2(rest)}` : `${minutes}:${pad2(rest)}`;
  }

  function formatClock(date) {
    return `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;
  }

  function formatAge(seconds) {
    const whole = Math.max(0, Math.floor(seconds));
    if (whole < 60) return `${whole} s`;
    if (whole < 3600) return `${Math.floor(whole / 60)} min`;
    return `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} min`;
  }

  function serviceLevelBand(ratio, target) {
    if (!isNumber(ratio) || !isNumber(target)) return "none";
    if (ratio >= target - EPSILON) return "green";
    if (ratio >= target - SL_AMBER_BAND_POINTS / 100 - EPSILON) return "amber";
    return "red";
  }

  // ---- staleness: judged on the worker's own clock, so a skewed wallboard PC clock does not matter ----

  function secondsBetween(laterIso, earlierIso) {
    const later = Date.parse(laterIso);
    const earlier = Date.parse(earlierIso);
    return Number.isNaN(later) || Number.isNaN(earlier) ? null : (later - earlier) / 1000;
  }

  function eventAge(lastEventTime, generatedAt) {
    return typeof lastEventTime === "string" ? secondsBetween(generatedAt, lastEventTime) : null;
  }

  function isStale(age, staleAfter) {
    return age === null || age > staleAfter;
  }

  function staleAfterSeconds(payload) {
    return isNumber(payload.stale_after_seconds) ? payload.stale_after_seconds : DEFAULT_STALE_AFTER_SECONDS;
  }

  // ---- DOM helpers ----

  function element(tag, className, attributes = {}) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    return node;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function valueElement(queue, field, extraAttributes = {}) {
    return element("span", "value", { "data-queue": queue, "data-field": field, ...extraAttributes });
  }

  function compareQueueNames(a, b) {
    const lowerA = a.toLowerCase();
    const lowerB = b.toLowerCase();
    if (lowerA !== lowerB) return lowerA < lowerB ? -1 : 1;
    if (a === b) return 0;
    return a < b ? -1 : 1;
  }

  // ---- tiles ----

  const tiles = new Map();

  function buildTile(queue) {
    const tile = element("section", "tile", { "data-queue": queue });

    const head = element("header", "tile-head");
    const name = element("h2", "queue-name", { "data-queue": queue, "data-field": "name" });
    name.textContent = queue;
    const tag = element("span", "queue-tag", { "data-queue": queue, "data-field": "queue-status" });
    const target = element("span", "target");
    const targetWord = element("span", "target-word");
    targetWord.textContent = "Target ";
    target.append(
      targetWord,
      valueElement(queue, "sl-target"),
      "% in ",
      valueElement(queue, "threshold"),
      " s",
    );
    const nameLine = element("div", "name-line");
    nameLine.append(name, tag);
    const meta = element("div", "tile-meta");
    meta.append(target);
    head.append(nameLine, meta);

    const serviceLevels = element("div", "sl-row");
    for (const box of SERVICE_LEVEL_BOXES) {
      const cell = element("div", box.primary ? "sl sl-primary" : "sl", {
        "data-queue": queue,
        "data-sl": box.field,
        "data-band": "none",
      });
      const label = element("div", "label");
      label.textContent = `SL ${box.label}`;
      const figure = element("div", "figure");
      const unit = element("span", "unit");
      unit.textContent = "%";
      figure.append(valueElement(queue, box.field, { "data-window": box.window }), unit);
      cell.append(label, figure);
      serviceLevels.append(cell);
    }

    const stats = element("div", "stats");
    for (const stat of STATS) {
      const cell = element("div", "stat", { "data-stat": stat.field });
      const label = element("div", "label");
      label.textContent = stat.label;
      const figure = element("div", "figure");
      const attributes = stat.window ? { "data-window": stat.window } : {};
      figure.append(valueElement(queue, stat.field, attributes));
      if (stat.unit) {
        const unit = element("span", "unit");
        unit.textContent = stat.unit;
        figure.append(unit);
      }
      cell.append(label, figure);
      stats.append(cell);
    }
    const agents = element("div", "stat", { "data-stat": "agents" });
    const agentsLabel = element("div", "label");
    agentsLabel.textContent = "Agents avail / busy";
    const agentsFigure = element("div", "figure");
    const separator = element("span", "separator");
    separator.textContent = "/";
    agentsFigure.append(
      valueElement(queue, "agents-available"),
      separator,
      valueElement(queue, "agents-busy"),
    );
    agents.append(agentsLabel, agentsFigure);
    stats.append(agents, ...buildJourneyStats(queue));
    appendForesight(queue, stats);

    tile.append(head, serviceLevels, stats);
    return tile;
  }

  // ---- foresight: where the queue is heading (docs/foresight.md) ----

  function foresightStat(queue, statName, labelText, fields, unit) {
    const cell = element("div", "stat foresight", { "data-stat": statName });
    const label = element("div", "label");
    label.textContent = labelText;
    const figure = element("div", "figure");
    fields.forEach((name, index) => {
      if (index > 0) {
        const separator = element("span", "separator");
        separator.textContent = "/";
        figure.append(separator);
      }
      figure.append(valueElement(queue, name));
    });
    if (unit) {
      const unitNode = element("span", "unit");
      unitNode.textContent = unit;
      figure.append(unitNode);
    }
    cell.append(label, figure);
    return cell;
  }

  function appendForesight(queue, stats) {
    stats.append(
      foresightStat(queue, "foresight-ewt", "Expected wait", ["ewt"], ""),
      foresightStat(queue, "foresight-sl", "Projected SL", ["projected-sl"], "%"),
      foresightStat(queue, "foresight-agents", "Agents needed / in", ["agents-needed", "agents-logged-in"], ""),
    );
  }

  function updateForesight(tile, queueData) {
    const settings = queueData.settings && typeof queueData.settings === "object" ? queueData.settings : {};
    const foresight = queueData.foresight && typeof queueData.foresight === "object" ? queueData.foresight : {};
    setValue(tile, "ewt", formatWait(foresight.ewt_seconds));
    setValue(tile, "projected-sl", formatServiceLevel(foresight.projected_service_level));
    tile
      .querySelector('[data-stat="foresight-sl"]')
      .setAttribute("data-band", serviceLevelBand(foresight.projected_service_level, settings.target));
    setValue(tile, "agents-needed", formatCount(foresight.agents_needed));
    setValue(tile, "agents-logged-in", formatCount(foresight.agents_logged_in));
    const short =
      isNumber(foresight.agents_needed) &&
      isNumber(foresight.agents_logged_in) &&
      foresight.agents_needed > foresight.agents_logged_in;
    tile.querySelector('[data-stat="foresight-agents"]').classList.toggle("is-over", short);
  }

  function field(tile, name) {
    return tile.querySelector(`[data-field="${name}"]`);
  }

  function setValue(tile, name, text) {
    const node = field(tile, name);
    setText(node, text);
    node.classList.toggle("is-null", text === DASH);
  }

  function windowOf(queueData, name) {
    const windows = queueData.windows && typeof queueData.windows === "object" ? queueData.windows : {};
    const found = windows[name];
    return found && typeof found === "object" ? found : {};
  }

  function updateTile(tile, queueData, payload) {
    const settings = queueData.settings && typeof queueData.settings === "object" ? queueData.settings : {};
    const live = queueData.live && typeof queueData.live === "object" ? queueData.live : {};
    const agents = live.agents && typeof live.agents === "object" ? live.agents : {};

    setValue(tile, "sl-target", formatPercent(settings.target));
    setValue(tile, "threshold", formatPlainNumber(settings.threshold_seconds));

    for (const box of SERVICE_LEVEL_BOXES) {
      // The live variant counts calls still waiting past the threshold as misses, so a backlog shows now.
      const ratio = windowOf(queueData, box.window).service_level_live;
      setValue(tile, box.field, formatServiceLevel(ratio));
      tile.querySelector(`[data-sl="${box.field}"]`).setAttribute("data-band", serviceLevelBand(ratio, settings.target));
    }

    setValue(tile, "waiting", formatCount(live.calls_waiting));
    setValue(tile, "callbacks", formatCount(live.callbacks_waiting));
    setValue(tile, "oldest", formatWait(live.oldest_wait_seconds));
    const overThreshold =
      isNumber(live.oldest_wait_seconds) &&
      isNumber(settings.threshold_seconds) &&
      live.oldest_wait_seconds > settings.threshold_seconds;
    tile.querySelector('[data-stat="oldest"]').classList.toggle("is-over", overThreshold);

    const rates = windowOf(queueData, RATES_WINDOW);
    setValue(tile, "asa", formatWholeSeconds(rates.asa_seconds));
    setValue(tile, "abandon", formatPercent(rates.abandon_rate));
    setValue(tile, "agents-available", formatCount(agents.available));
    setValue(tile, "agents-busy", formatCount(agents.busy));
    updateJourneyStats(tile, queueData);
    updateForesight(tile, queueData);

    const age = eventAge(queueData.last_event_time, payload.generated_at);
    const stale = isStale(age, staleAfterSeconds(payload));
    tile.setAttribute("data-stale", String(stale));
    let status = "";
    if (age === null) status = "No events yet";
    else if (stale) status = `No events for ${formatAge(age)}`;
    setText(field(tile, "queue-status"), status);
  }

  // ---- layout: the column count that gives the largest tiles, or one row per queue when tiles get small ----

  const TILE_ASPECT = 1.7;
  // Below this tile width the labels inside each tile are too small to read across a room; rows under
  // one shared header row keep the figures large instead.
  const MIN_TILE_WIDTH_PX = 560;

  // Text that would overflow its box (a long queue name, a status tag, a label at a small size) is
  // made smaller until it fits, never cut off with an ellipsis; sizes return to the style sheet's
  // on every layout, so a name that got shorter grows back.
  const FIT_SELECTOR = ".queue-name, .queue-tag, .target, .label, .figure, .table-head > span";
  const FIT_STEPS = 6;
  const MIN_FONT_PX = 6;

  function overflows(node) {
    return node.scrollWidth > node.clientWidth + 1 || node.scrollHeight > node.clientHeight + 1;
  }

  function fitText(node) {
    node.style.fontSize = "";
    for (let step = 0; step < FIT_STEPS && node.clientWidth > 0 && overflows(node); step += 1) {
      const size = parseFloat(getComputedStyle(node).fontSize);
      const ratio = Math.min(node.clientWidth / node.scrollWidth, node.clientHeight / node.scrollHeight);
      const next = Math.max(MIN_FONT_PX, Math.floor(size * Math.min(0.95, ratio) * 10) / 10);
      if (next >= size) break;
      node.style.fontSize = `${next}px`;
    }
  }

  function fitAllText(root) {
    for (const node of root.querySelectorAll(FIT_SELECTOR)) fitText(node);
  }

  function layoutGrid(grid) {
    const count = Math.max(1, tiles.size);
    const style = getComputedStyle(grid);
    const gap = parseFloat(style.columnGap) || 0;
    const width = grid.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const height = grid.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    let best = { columns: 1, rows: count, size: -1 };
    for (let columns = 1; columns <= count; columns += 1) {
      const rows = Math.ceil(count / columns);
      const tileWidth = (width - gap * (columns - 1)) / columns;
      const tileHeight = (height - gap * (rows - 1)) / rows;
      const size = Math.min(tileWidth, tileHeight * TILE_ASPECT);
      if (size > best.size) best = { columns, rows, size };
    }
    const useRows = count > 1 && best.size < MIN_TILE_WIDTH_PX;
    grid.setAttribute("data-layout", useRows ? "rows" : "tiles");
    grid.style.setProperty("--columns", String(useRows ? 1 : best.columns));
    grid.style.setProperty("--rows", String(useRows ? count : best.rows));
    fitAllText(grid);
    // Tiles created in this task get their container-relative sizes only in the next frame's style
    // pass, so fit once more there.
    requestAnimationFrame(() => fitAllText(grid));
  }

  // ---- page state ----

  const grid = document.getElementById("queues");
  const banner = document.getElementById("banner");
  const bannerTitle = document.getElementById("banner-title");
  const bannerDetail = document.getElementById("banner-detail");
  const statusText = document.getElementById("status-text");
  const clock = document.getElementById("clock");

  let lastSuccess = null; // { at: Date, payload }
  let failure = null; // { kind: "unreachable" | "error", reason: string }

  function validatePayload(payload) {
    if (!payload || typeof payload !== "object" || !Array.isArray(payload.queues)) {
      throw new Error("the answer has no \"queues\" list");
    }
    for (const queueData of payload.queues) {
      if (!queueData || typeof queueData.queue !== "string") {
        throw new Error("a queue entry has no \"queue\" name");
      }
    }
  }

  function renderQueues(payload) {
    const ordered = [...payload.queues].sort((a, b) => compareQueueNames(a.queue, b.queue));
    const present = new Set(ordered.map((queueData) => queueData.queue));
    for (const [name, tile] of tiles) {
      if (!present.has(name)) {
        tile.remove();
        tiles.delete(name);
      }
    }
    for (const queueData of ordered) {
      let tile = tiles.get(queueData.queue);
      if (!tile) {
        tile = buildTile(queueData.queue);
        tiles.set(queueData.queue, tile);
      }
      updateTile(tile, queueData, payload);
      grid.append(tile); // moves an existing tile into sorted position
    }
    grid.classList.toggle("is-empty", tiles.size === 0);
    layoutGrid(grid);
  }

  function currentState() {
    if (failure) return failure.kind;
    if (!lastSuccess) return "loading";
    const payload = lastSuccess.payload;
    const age = eventAge(payload.last_event_time, payload.generated_at);
    return isStale(age, staleAfterSeconds(payload)) ? "stale" : "ok";
  }

  const SEPARATOR = " \u00b7 ";

  function lastUpdatedText() {
    if (!lastSuccess) return "No data received yet";
    const ago = (Date.now() - lastSuccess.at.getTime()) / 1000;
    return `Last updated ${formatClock(lastSuccess.at)} (${formatAge(ago)} ago)`;
  }

  function describeStale(payload) {
    const age = eventAge(payload.last_event_time, payload.generated_at);
    if (age === null) return ["The worker has received no events", "numbers are not live"].join(SEPARATOR);
    const newest = formatClock(new Date(Date.parse(payload.last_event_time)));
    return [`Newest event ${newest} (${formatAge(age)} old)`, "numbers are frozen, not live"].join(SEPARATOR);
  }

  function showState() {
    const state = currentState();
    document.body.setAttribute("data-state", state);
    banner.setAttribute("data-state", state);
    if (state === "ok") {
      setText(bannerTitle, "");
      setText(bannerDetail, "");
      setText(statusText, `Live \u00b7 updated ${formatClock(lastSuccess.at)}`);
    } else if (state === "stale") {
      setText(bannerTitle, "Data stale");
      setText(bannerDetail, describeStale(lastSuccess.payload));
      setText(statusText, `Stale \u00b7 updated ${formatClock(lastSuccess.at)}`);
    } else if (state === "loading") {
      setText(bannerTitle, "Connecting to the worker");
      setText(bannerDetail, "");
      setText(statusText, "Connecting");
    } else {
      const title = state === "unreachable" ? "Worker unreachable" : "Cannot show the worker's answer";
      setText(bannerTitle, title);
      setText(bannerDetail, [lastUpdatedText(), failure.reason, "numbers are not live"].join(SEPARATOR));
      setText(statusText, state === "unreachable" ? "Offline" : "Error");
    }
  }

  async function fetchQueues() {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    try {
      const response = await fetch(API_PATH, {
        cache: "no-store",
        headers: { Accept: "application/json" },
        signal: controller.signal,
      });
      if (!response.ok) throw new Error(`the worker answered HTTP ${response.status}`);
      return await response.json();
    } catch (error) {
      if (error.name === "AbortError") throw new Error(`no answer within ${FETCH_TIMEOUT_MS / 1000} s`);
      if (error instanceof TypeError) throw new Error("no connection to the worker");
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async function poll() {
    try {
      let payload;
      try {
        payload = await fetchQueues();
      } catch (error) {
        failure = { kind: "unreachable", reason: error.message };
        return;
      }
      try {
        payload = asQueuesPayload(payload);
        validatePayload(payload);
        renderQueues(payload);
        lastSuccess = { at: new Date(), payload };
        document.body.setAttribute("data-generated-at", String(payload.generated_at));
        failure = null;
      } catch (error) {
        failure = { kind: "error", reason: error.message };
      }
    } finally {
      showState();
      setTimeout(poll, POLL_INTERVAL_MS);
    }
  }

  function tick() {
    setText(clock, formatClock(new Date()));
    if (lastSuccess) showState();
  }

  if (VIEW.kind === "group") {
    document.body.setAttribute("data-view", "group");
    const brand = document.querySelector(".brand");
    brand.textContent = VIEW.name === null ? "Group wallboard" : `Group wallboard \u00b7 ${VIEW.name}`;
    grid.setAttribute("data-empty-text", VIEW.name === null ? "This worker owns no groups"
      : "This worker does not hold this group");
  }
  window.addEventListener("resize", () => layoutGrid(grid));
  tick();
  setInterval(tick, 1000);
  poll();
})();
