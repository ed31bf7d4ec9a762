// botpool dashboard: keeps the open page current without reloading it.
// Everything from the server is data: it goes into the page as text (textContent), never
// as HTML. Charts are uPlot (vendored); a series without any point says "no data".
"use strict";

const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
                 "#ca8a04", "#db2777", "#4b5563", "#65a30d", "#7c3aed", "#0d9488"];
const interval = Number(document.body.dataset.interval || 15) * 1000;

async function getJSON(url) {
  const answer = await fetch(url, {credentials: "same-origin", cache: "no-store"});
  if (!answer.ok) throw new Error(url + ": " + answer.status);
  return answer.json();
}

function every(element, update) {
  if (!element) return;
  const url = element.dataset.api;
  const tick = async () => {
    try { update(await getJSON(url)); element.dataset.updated = String(Date.now()); }
    catch (error) { element.textContent = "update failed: " + error.message; }
  };
  tick();
  setInterval(tick, interval);
}

function hasData(values) { return values.some((v) => v !== null && v !== undefined); }

// One uPlot chart per element, rebuilt when its series change, else given new data.
const charts = {};
function draw(id, times, named, unit) {
  const element = document.getElementById(id);
  if (!element) return;
  const names = Object.keys(named).filter((n) => hasData(named[n]));
  let note = element.querySelector(".nodata");
  if (!names.length) {
    if (charts[id]) { charts[id].destroy(); delete charts[id]; }
    if (!note) {
      note = document.createElement("p");
      note.className = "nodata";
      element.appendChild(note);
    }
    note.textContent = "no data";
    return;
  }
  if (note) note.remove();
  const data = [times, ...names.map((n) => named[n])];
  const key = names.join("\u0000");
  if (charts[id] && charts[id].key === key) { charts[id].setData(data); return; }
  if (charts[id]) charts[id].destroy();
  const series = [{}, ...names.map((n, i) => ({
    label: n, stroke: n === "limit" ? "#111827" : COLOURS[i % COLOURS.length],
    dash: n === "limit" ? [6, 4] : undefined, width: n === "limit" ? 2 : 1.5,
    points: {show: true, size: 4},  // a young series is a few points: show them
    value: (u, v) => (v === null || v === undefined ? "–" : v.toFixed(2) + (unit || "")),
  }))];
  const width = Math.max(320, element.clientWidth || 600);
  charts[id] = new uPlot({width, height: 240, series, scales: {x: {time: true}}}, data, element);
  charts[id].key = key;
}

// fleet: counts by health, each bot's state and health
every(document.getElementById("live"), (fleet) => {
  document.getElementById("refreshes").textContent = String(fleet.refreshes);
  for (const [health, n] of Object.entries(fleet.counts)) {
    const badge = document.querySelector(`.count[data-health="${health}"] b`);
    if (badge) badge.textContent = String(n);
  }
  for (const host of fleet.hosts) {
    for (const pool of host.pools) {
      for (const bot of pool.bots) {
        const row = [...document.querySelectorAll("tr.bot")].find((r) => r.dataset.bot === bot.key);
        if (!row) continue;
        row.querySelector(".state").textContent = bot.state;
        const health = row.querySelector(".health");
        health.textContent = bot.health;
        health.className = "health " + bot.health;
        row.querySelector(".why").textContent = bot.failed.map((f) => f.check).join(", ");
      }
    }
  }
});

// pool: memory (pool, limit, each bot's PSS) and CPU
every(document.getElementById("live-pool"), (answer) => {
  const c = answer.charts;
  const memory = {pool: c.memory.pool, limit: c.memory.limit};
  for (const [bot, values] of Object.entries(c.memory.bots)) memory["PSS " + bot] = values;
  draw("memory-chart", c.times, memory, " MiB");
  draw("cpu-chart", c.times, {"pool CPU": c.cpu}, "");
  for (const bot of answer.pool.bots) {
    const row = [...document.querySelectorAll("#pool-bots tr")].find((r) => r.dataset.bot === bot.key);
    if (!row) continue;
    const health = row.querySelector(".health");
    health.textContent = bot.health;
    health.className = "health " + bot.health;
  }
});

// bot: closed profit and wallet, open and closed trades
every(document.getElementById("live-bot"), (answer) => {
  const c = answer.charts;
  draw("money-chart", c.times, {"closed profit": c.profit, wallet: c.wallet}, "");
  draw("trades-chart", c.times, {open: c.trades_open, closed: c.trades_closed}, "");
  const health = document.getElementById("bot-health");
  health.textContent = answer.bot.health + " · supervisor: " + answer.bot.state;
  health.className = "health " + answer.bot.health;
});
