// hookserver's landing page and dashboard. Every value from a delivery is put in the page
// as text (textContent), never as HTML.
"use strict";

(function () {
  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));

  function el(tag, props, children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children || []) {
      node.append(child === null || child === undefined ? "" : child);
    }
    return node;
  }

  // --- Copy buttons (every page) -------------------------------------------------------
  for (const button of $$("button.copy")) {
    button.addEventListener("click", async () => {
      const text = button.dataset.copy;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch (_) {
        // No clipboard (plain HTTP on another host, or refused): select the URL instead.
        const code = button.parentElement.querySelector(".url-text");
        const range = document.createRange();
        range.selectNodeContents(code);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Press Ctrl+C";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
  }

  // The login form comes back to the page it was sent from.
  for (const next of $$("form input[name=next]")) {
    if (location.pathname === "/dashboard") next.value = "/dashboard";
  }

  if (document.body.dataset.dashboard !== "on") return;

  // --- The dashboard -------------------------------------------------------------------
  async function api(method, path, body) {
    const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let data = null;
    try { data = await response.json(); } catch (_) { /* not JSON */ }
    if (response.status === 401) {
      // The session ended (the secret changed, or a log-out elsewhere): back to the login.
      location.reload();
    }
    if (!response.ok) {
      const message = data && data.error ? data.error : response.status + " " + response.statusText;
      throw new Error(message);
    }
    return data;
  }

  const rows = $("#delivery-list tbody");
  const empty = $("#empty");
  const live = $("#live");
  const note = $("#log-note");
  let capacity = 0;
  let selected = null;

  function statusClass(status) {
    return "status s" + String(status).charAt(0);
  }

  function timeOf(iso) {
    const date = new Date(iso);
    return isNaN(date) ? iso : date.toLocaleTimeString();
  }

  function eventOf(d) {
    if (!d.scope && !d.action) return "–";
    return [d.scope, d.action].filter(Boolean).join(" · ");
  }

  function row(d) {
    const endpoint = el("td", { className: "wrap-cell" }, [d.endpoint]);
    if (d.kind === "replay") endpoint.append(el("span", { className: "tag", textContent: "replay of #" + d.replay_of }));
    if (d.kind === "test") endpoint.append(el("span", { className: "tag", textContent: "test" }));
    const tr = el("tr", { tabIndex: 0 }, [
      el("td", {}, ["#" + d.id]),
      el("td", { title: d.received + (d.client ? " from " + d.client : "") }, [timeOf(d.received)]),
      endpoint,
      el("td", {}, [eventOf(d)]),
      el("td", { className: "wrap-cell" }, [d.repo || "–"]),
      el("td", { className: statusClass(d.status) }, [String(d.status)]),
      el("td", { className: "num" }, [d.duration_ms.toFixed(1) + " ms"]),
    ]);
    tr.dataset.id = d.id;
    tr.dataset.kind = d.kind;
    tr.addEventListener("click", () => show(d.id));
    tr.addEventListener("keydown", (e) => { if (e.key === "Enter") show(d.id); });
    if (selected === d.id) tr.classList.add("selected");
    return tr;
  }

  function refreshEmpty() {
    empty.hidden = rows.children.length > 0;
  }

  function add(d) {
    if (rows.querySelector('tr[data-id="' + d.id + '"]')) return;
    // Newest first: the first row with a smaller id comes after this one.
    const after = Array.from(rows.children).find((tr) => Number(tr.dataset.id) < d.id);
    rows.insertBefore(row(d), after || null);
    while (capacity > 0 && rows.children.length > capacity) rows.lastElementChild.remove();
    refreshEmpty();
  }

  async function loadList() {
    const data = await api("GET", "/api/deliveries");
    capacity = data.capacity;
    note.textContent = capacity === 0
      ? "The delivery log is off (HOOKSERVER_DELIVERY_LOG=0): test deliveries are answered but not kept."
      : "The last " + capacity + " deliveries, kept in memory; new ones appear as they arrive.";
    rows.replaceChildren(...data.deliveries.map(row));
    refreshEmpty();
  }

  function kvRows(pairs) {
    return pairs.map(([key, value]) => el("tr", {}, [el("td", {}, [key]), el("td", {}, [value])]));
  }

  function answerText(answer) {
    if (answer.streamed) return "(a streamed answer: not recorded)";
    let text = answer.body === null || answer.body === "" ? "(empty)" : indented(answer.body);
    if (answer.body_cut) text += "\n… (cut: " + answer.body_size + " bytes in all)";
    return text;
  }

  // JSON indented here, keys and numbers exactly as sent (the server sends the body as it
  // came, so that a deeply nested one costs it no more than its size). Not JSON: as is.
  function indented(text) {
    try { JSON.parse(text); } catch (e) { return text; }
    const maxDepth = 32;
    let out = "", depth = 0, inString = false, escaped = false;
    const newline = () => "\n" + "  ".repeat(Math.min(depth, maxDepth));
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        out += c;
        if (escaped) escaped = false;
        else if (c === "\\") escaped = true;
        else if (c === '"') inString = false;
        continue;
      }
      if (c === " " || c === "\t" || c === "\n" || c === "\r") continue;
      if (c === '"') { inString = true; out += c; continue; }
      if (c === "{" || c === "[") {
        const close = c === "{" ? "}" : "]";
        let j = i + 1;
        while (j < text.length && " \t\n\r".includes(text[j])) j++;
        if (text[j] === close) { out += c + close; i = j; continue; }
        depth++;
        out += c + newline();
        continue;
      }
      if (c === "}" || c === "]") { depth--; out += newline() + c; continue; }
      if (c === ",") { out += "," + newline(); continue; }
      if (c === ":") { out += ": "; continue; }
      out += c;
    }
    return out;
  }

  function bodyText(request) {
    if (request.body === null) return "(not read: the request was refused before its body)";
    let text = request.body === "" ? "(empty)" : indented(request.body);
    if (request.body_cut) text += "\n… (cut: " + request.body_size + " bytes in all)";
    return text;
  }

  function render(d) {
    selected = d.id;
    for (const tr of $$("tr.selected", rows)) tr.classList.remove("selected");
    const tr = rows.querySelector('tr[data-id="' + d.id + '"]');
    if (tr) tr.classList.add("selected");
    const section = $("#detail");
    section.hidden = false;
    section.dataset.id = d.id;
    let title = "Delivery #" + d.id;
    if (d.kind === "replay") title += " (replay of #" + d.replay_of + ")";
    if (d.kind === "test") title += " (test)";
    $("#detail-title").textContent = title;
    const query = d.request.query ? "?" + d.request.query : "";
    $("#detail-request").textContent = d.request.method + " " + d.request.path + query + " · received " +
      d.received + (d.client ? " from " + d.client : "") + " · answered " + d.status + " in " +
      d.duration_ms.toFixed(1) + " ms";
    const headers = kvRows(d.request.headers);
    if (d.request.headers_cut) headers.push(el("tr", {}, [el("td", {}, ["…"]), el("td", {}, ["(more headers, not kept)"])]));
    $("#detail-headers tbody").replaceChildren(...headers);
    $("#detail-body").textContent = bodyText(d.request);
    const answer = $("#detail-answer");
    answer.textContent = "HTTP " + d.answer.status +
      (d.answer.content_type ? " · " + d.answer.content_type : "") + "\n\n" + answerText(d.answer);
    const redeliver = $("#redeliver");
    redeliver.disabled = !d.redeliverable;
    redeliver.title = d.redeliverable ? "Send this delivery again, through the same handler" :
      "Only a delivery that reached an endpoint and was kept whole can be sent again";
    $("#redeliver-result").textContent = "";
  }

  async function show(id) {
    try {
      render(await api("GET", "/api/deliveries/" + id));
      $("#detail").scrollIntoView({ behavior: "smooth", block: "start" });
    } catch (err) {
      $("#detail").hidden = false;
      $("#detail-title").textContent = "Delivery #" + id;
      $("#detail-request").textContent = err.message;
    }
  }

  $("#redeliver").addEventListener("click", async () => {
    const button = $("#redeliver");
    const result = $("#redeliver-result");
    const id = $("#detail").dataset.id;
    button.disabled = true;
    result.textContent = "Sending…";
    try {
      const data = await api("POST", "/api/deliveries/" + id + "/redeliver");
      add(data.delivery);
      render(data.delivery);
      $("#redeliver-result").textContent = "Sent again as #" + data.delivery.id + ": " + data.delivery.status;
    } catch (err) {
      result.textContent = err.message;
      button.disabled = false;
    }
  });

  // --- Test deliveries -----------------------------------------------------------------
  let samples = {};

  function fill(form) {
    const name = $("select.sample", form).value;
    if (name && samples[name] !== undefined) $("textarea.body", form).value = samples[name];
  }

  async function loadSamples() {
    const data = await api("GET", "/api/samples");
    samples = Object.fromEntries(data.samples.map((s) => [s.name, s.body]));
    for (const form of $$("form.test-form")) fill(form);
  }

  for (const form of $$("form.test-form")) {
    const select = $("select.sample", form);
    const textarea = $("textarea.body", form);
    select.addEventListener("change", () => fill(form));
    textarea.addEventListener("input", () => {
      if (select.value && textarea.value !== samples[select.value]) select.value = "";
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const output = $("output.answer", form);
      const button = $("button[type=submit]", form);
      button.disabled = true;
      output.className = "answer";
      output.textContent = "Sending…";
      try {
        const data = await api("POST", "/api/webhooks/" + form.dataset.endpoint + "/test", { body: textarea.value });
        const d = data.delivery;
        if (data.kept) add(d);
        output.className = "answer " + statusClass(d.status);
        const answer = d.answer.body ? ": " + d.answer.body.slice(0, 200) : "";
        output.textContent = (data.kept ? "#" + d.id + " answered " : "Answered ") + d.status + answer;
      } catch (err) {
        output.className = "answer off";
        output.textContent = err.message;
      } finally {
        button.disabled = false;
      }
    });
  }

  // --- Live updates --------------------------------------------------------------------
  function connect() {
    const source = new EventSource("/api/events");
    source.addEventListener("open", () => {
      live.dataset.state = "live";
      live.textContent = "live";
      // Deliveries that came while disconnected.
      loadList().catch(() => {});
    });
    source.addEventListener("delivery", (event) => add(JSON.parse(event.data)));
    source.addEventListener("lagged", () => { loadList().catch(() => {}); });
    source.addEventListener("error", () => {
      live.dataset.state = "reconnecting";
      live.textContent = "reconnecting…";
    });
  }

  // --- The inbox (queued endpoints) ---------------------------------------------------
  const inboxRows = $("#inbox-list tbody");

  function inboxRow(d) {
    const last = d.errors.length ? d.errors[d.errors.length - 1].error : "";
    const when = d.state === "queued" || d.state === "retrying"
      ? "next " + timeOf(d.next) + (last ? " · " + last : "")
      : last;
    const actions = el("td");
    if (d.state === "dead") {
      const retry = el("button", { type: "button", textContent: "Retry now" });
      retry.addEventListener("click", () => inboxAction("POST", "/api/inbox/" + d.id + "/retry"));
      const discard = el("button", { type: "button", textContent: "Discard" });
      discard.addEventListener("click", () => inboxAction("DELETE", "/api/inbox/" + d.id));
      actions.append(retry, " ", discard);
    }
    return el("tr", { className: "inbox-" + d.state }, [
      el("td", { textContent: d.id }),
      el("td", { textContent: timeOf(d.received) }),
      el("td", { textContent: d.endpoint }),
      el("td", { textContent: d.webhook_id || "—" }),
      el("td", { textContent: d.state, className: "state" }),
      el("td", { textContent: d.attempts, className: "num" }),
      el("td", { textContent: when, className: "error-text" }),
      actions,
    ]);
  }

  async function loadInbox() {
    const data = await api("GET", "/api/inbox");
    const c = data.counts;
    $("#inbox-counts").textContent = c.queued + " queued · " + c.running + " running · " +
      c.retrying + " retrying · " + c.done + " done · " + c.dead + " dead";
    inboxRows.replaceChildren(...data.deliveries.map(inboxRow));
  }

  async function inboxAction(method, path) {
    const result = $("#inbox-result");
    try {
      await api(method, path);
      result.textContent = "";
    } catch (err) {
      result.textContent = err.message;
    }
    loadInbox().catch(() => {});
  }

  if (inboxRows) {
    loadInbox().catch((err) => { $("#inbox-result").textContent = err.message; });
    setInterval(() => { loadInbox().catch(() => {}); }, 2000);
  }

  loadSamples().catch(() => {});
  loadList().catch((err) => { note.textContent = err.message; });
  connect();
})();
