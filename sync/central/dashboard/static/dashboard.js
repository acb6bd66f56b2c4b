// Draws the page's Plotly figures (handed over as JSON data blocks, never inline script) and
// keeps the live queue fresh. Stored text is only ever put in the page with textContent.
"use strict";

function drawCharts() {
  if (!window.Plotly) return;
  document.querySelectorAll("div.chart[data-figure]").forEach((element) => {
    const source = document.getElementById(element.dataset.figure);
    if (!source) return;
    const figure = JSON.parse(source.textContent);
    window.Plotly.newPlot(element, figure.data, figure.layout, {
      responsive: true,
      displaylogo: false,
      modeBarButtonsToRemove: ["lasso2d", "select2d", "toImage"],
    });
  });
}

function cell(tag, text, className) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

// The page's words for the queue (data-words, in the login's language); English if absent.
const QUEUE_WORDS = {
  in_queue: "{n} in queue", ticket: "Ticket", status: "Status", wait: "Wait",
  over_target: "over target", nobody: "Nobody is waiting right now.",
};

function renderQueue(container, queue) {
  const words = Object.assign({}, QUEUE_WORDS, JSON.parse(container.dataset.words || "{}"));
  const desks = queue.desks.map((desk) => {
    const box = cell("div", "", "desk");
    const title = cell("h3", desk.desk + " ");
    title.appendChild(cell("span", words.in_queue.replace("{n}", desk.visits.length), "muted"));
    box.appendChild(title);
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    [words.ticket, words.status, words.wait].forEach((name, i) => head.appendChild(cell("th", name, i === 2 ? "num" : "")));
    const body = table.createTBody();
    desk.visits.forEach((visit) => {
      const row = body.insertRow();
      if (visit.over_target) row.className = "over";
      row.appendChild(cell("td", visit.ticket));
      row.appendChild(cell("td", words[visit.status] || visit.status));
      const wait = cell("td", Math.round(visit.wait_min) + " min", "num");
      if (visit.over_target) wait.appendChild(cell("span", " " + words.over_target, "sr-only"));
      row.appendChild(wait);
    });
    box.appendChild(table);
    return box;
  });
  if (desks.length === 0) desks.push(cell("p", words.nobody, "muted"));
  container.replaceChildren(...desks);
  const stamp = document.getElementById("queue-updated");
  if (stamp) {
    stamp.dateTime = queue.as_of;
    stamp.textContent = queue.as_of.slice(11, 16) + " UTC";
  }
}

function watchQueue() {
  const container = document.getElementById("queue");
  if (!container) return;
  const refresh = async () => {
    try {
      const response = await fetch(container.dataset.source, { headers: { Accept: "application/json" } });
      if (response.status === 401) { window.location.assign("/login?next=/"); return; }
      if (response.ok) renderQueue(container, await response.json());
    } catch (error) {
      // A network blip: keep showing the last queue; the next tick tries again.
    }
  };
  window.setInterval(refresh, 10000);
}

document.addEventListener("DOMContentLoaded", () => { drawCharts(); watchQueue(); });

// A set-password link carries its one-time token after '#', which browsers never send: it
// stays out of every server and proxy log. The form posts it.
function takeLinkToken() {
  const field = document.getElementById("link-token");
  if (field && window.location.hash.length > 1) {
    field.value = decodeURIComponent(window.location.hash.slice(1));
    history.replaceState(null, "", window.location.pathname);
  }
}
document.addEventListener("DOMContentLoaded", takeLinkToken);
window.addEventListener("hashchange", takeLinkToken);
