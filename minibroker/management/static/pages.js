"use strict";
// The pages of the management page: each is { mount(root), update() } (see app.js).
// Rule: a page shows what the API answered; it computes nothing the API already gives.

pages.overview = () => {
  let show, rateCanvas, depthCanvas;
  return {
    mount(root) {
      rateCanvas = h("canvas", { class: "chart", id: "rate-chart" });
      depthCanvas = h("canvas", { class: "chart", id: "depth-chart" });
      show = live(root);
      root.prepend(h("h1", {}, "Overview"), h("div", { class: "grid" },
        h("section", { class: "panel" }, h("h2", {}, "Message rates"), rateCanvas,
          Charts.legend(RATE_SERIES.map(([, name]) => name))),
        h("section", { class: "panel" }, h("h2", {}, "Queued messages"), depthCanvas,
          Charts.legend(DEPTH_SERIES.map(([, name]) => name)))));
    },
    async update() {
      const { data } = await api("GET", "/overview?lengths_age=600&lengths_incr=5");
      const stats = data.message_stats, totals = data.queue_totals;
      state.rates.push([Date.now(), RATE_SERIES.map(([key]) =>
        stats[key + "_details"] ? stats[key + "_details"].rate : 0)]);
      state.rates = state.rates.slice(-120);
      Charts.draw(rateCanvas, RATE_SERIES.map(([, name], i) =>
        ({ name, points: state.rates.map(([t, values]) => [t, values[i]]) })));
      Charts.draw(depthCanvas, DEPTH_SERIES.map(([key, name]) => ({
        name, points: (totals[key + "_details"].samples || [])
          .map((s) => [s.timestamp, s.sample]).reverse() })));
      const total = (value, name) => h("div", { class: "total" }, h("b", {}, num(value)),
        h("span", {}, name));
      const o = data.object_totals;
      show(h("div", { class: "totals" },
        total(totals.messages, "messages"), total(totals.messages_ready, "ready"),
        total(totals.messages_unacknowledged, "unacked"), total(o.connections, "connections"),
        total(o.channels, "channels"), total(o.queues, "queues"),
        total(o.exchanges, "exchanges"), total(o.consumers, "consumers")),
      h("section", { class: "panel" }, h("h2", {}, "Node"),
        h("p", {}, `${data.node} · ${data.product_name} ${data.product_version} · ` +
          `RabbitMQ API ${data.rabbitmq_version}`),
        table([["Protocol", (l) => l.protocol], ["Address", (l) => l.ip_address],
               ["Port", (l) => num(l.port), "num"]], data.listeners, "no listeners")));
    },
  };
};

const QUEUE_COLUMNS = [
  ["Name", (q) => link(queueHref(q), q.name)], ["Vhost", (q) => q.vhost],
  ["Type", (q) => q.type], ["Features", flags], ["Consumers", (q) => num(q.consumers), "num"],
  ["Ready", (q) => num(q.messages_ready), "num"],
  ["Unacked", (q) => num(q.messages_unacknowledged), "num"],
  ["Total", (q) => num(q.messages), "num"],
  ["Incoming", (q) => rate((q.message_stats || {}).publish_details), "num"],
  ["Deliver / get", (q) => rate((q.message_stats || {}).deliver_get_details), "num"],
  ["Ack", (q) => rate((q.message_stats || {}).ack_details), "num"],
];

function declareForm(kind, fields) {
  return h("form", { class: "inline panel", id: `declare-${kind}`, onsubmit: (event) => {
    event.preventDefault();
    const form = formData(event.target);
    act(`${kind} ${form.name} declared`, () => api("PUT",
      `/${kind}s/${enc(form.vhost || "/")}/${enc(form.name)}`, {
        ...(form.type ? { type: form.type } : {}), durable: !!form.durable,
        auto_delete: !!form.auto_delete, ...(form.internal ? { internal: true } : {}),
        arguments: jsonField(form.arguments, "arguments") }));
  } }, h("label", {}, "Name", h("input", { name: "name", required: true })),
  h("label", {}, "Vhost", h("input", { name: "vhost", value: "/" })), fields,
  h("label", {}, h("input", { type: "checkbox", name: "durable" }), "durable"),
  h("label", {}, h("input", { type: "checkbox", name: "auto_delete" }), "auto-delete"),
  h("label", {}, "Arguments (JSON)", h("input", { name: "arguments", placeholder: "{}" })),
  h("button", { class: "primary", type: "submit" }, `Add ${kind}`));
}

function listPage(title, path, columns, extra) {
  return () => {
    let show;
    return {
      mount(root) {
        root.append(h("h1", {}, title));
        show = live(root);
        if (extra) root.append(extra());
      },
      async update() { show(table(columns, (await api("GET", path)).data, `no ${title.toLowerCase()}`)); },
    };
  };
}

pages.queues = listPage("Queues", "/queues", QUEUE_COLUMNS, () => declareForm("queue", []));
pages.exchanges = listPage("Exchanges", "/exchanges", [
  ["Name", (x) => link(exchangeHref(x), x.name || "(AMQP default)")], ["Vhost", (x) => x.vhost],
  ["Type", (x) => x.type], ["Features", flags],
], () => declareForm("exchange", [h("label", {}, "Type", h("select", { name: "type" },
  ["direct", "fanout", "topic", "headers"].map((t) => h("option", {}, t)))),
  h("label", {}, h("input", { type: "checkbox", name: "internal" }), "internal")]));

const BINDING_COLUMNS = [
  ["Source", (b) => (b.source ? link(exchangeHref({ vhost: b.vhost, name: b.source }), b.source)
    : "(AMQP default)")],
  ["Destination", (b) => (b.destination_type === "queue"
    ? link(queueHref({ vhost: b.vhost, name: b.destination }), b.destination)
    : link(exchangeHref({ vhost: b.vhost, name: b.destination }), b.destination))],
  ["Type", (b) => b.destination_type], ["Routing key", (b) => b.routing_key],
  ["Arguments", (b) => JSON.stringify(b.arguments)],
];
const unbind = (b) => (b.source ? h("button", { class: "danger", onclick: () =>
  act("binding deleted", () => api("DELETE", `/bindings/${enc(b.vhost)}/e/${enc(b.source)}/` +
    `${b.destination_type === "queue" ? "q" : "e"}/${enc(b.destination)}/${enc(b.properties_key)}`)) },
  "Unbind") : "");
pages.bindings = listPage("Bindings", "/bindings", [...BINDING_COLUMNS, ["", unbind]]);

const closeButton = (c) => h("button", { class: "danger", onclick: () => act("connection closed",
  () => api("DELETE", `/connections/${enc(c.name)}`)) }, "Close");
pages.connections = listPage("Connections", "/connections", [
  ["Name", (c) => c.user_provided_name ? `${c.name} (${c.user_provided_name})` : c.name],
  ["User", (c) => c.user], ["Protocol", (c) => c.protocol || ""], ["State", (c) => c.state || ""],
  ["Channels", (c) => num(c.channels), "num"], ["From client", (c) => rate(c.recv_oct_details), "num"],
  ["To client", (c) => rate(c.send_oct_details), "num"], ["", closeButton],
]);
pages.channels = listPage("Channels", "/channels", [
  ["Channel", (c) => c.name], ["User", (c) => c.user],
  ["Mode", (c) => [c.confirm ? "confirm" : "", c.transactional ? "tx" : ""].join(" ")],
  ["Prefetch", (c) => num(c.prefetch_count), "num"], ["Consumers", (c) => num(c.consumer_count), "num"],
  ["Unacked", (c) => num(c.messages_unacknowledged), "num"],
]);
const CONSUMER_COLUMNS = [
  ["Queue", (c) => link(queueHref(c.queue), c.queue.name)], ["Consumer tag", (c) => c.consumer_tag],
  ["Channel", (c) => c.channel_details.name], ["Ack required", (c) => (c.ack_required ? "yes" : "no")],
  ["Exclusive", (c) => (c.exclusive ? "yes" : "no")], ["Prefetch", (c) => num(c.prefetch_count), "num"],
];
pages.consumers = listPage("Consumers", "/consumers", CONSUMER_COLUMNS);

function props(pairs) {
  return h("dl", { class: "props" },
    pairs.flatMap(([key, value]) => [h("dt", {}, key), h("dd", {}, value)]));
}

function renderMessage(m) {
  return h("div", { class: "message" }, props([
    ["Exchange", m.exchange || "(AMQP default)"], ["Routing key", m.routing_key],
    ["Redelivered", String(m.redelivered)], ["Remaining", num(m.message_count)],
    ["Properties", JSON.stringify(m.properties)],
    ["Payload", `${m.payload_bytes} bytes, ${m.payload_encoding}`]]), h("pre", {}, m.payload));
}

pages.queue = (vhost, name) => {
  const path = `/queues/${enc(vhost)}/${enc(name)}`;
  let show, results;
  return {
    mount(root) {
      show = live(root);
      results = h("div", { id: "get-results" });
      root.prepend(h("h1", {}, `Queue ${name}`));
      root.append(
        h("section", { class: "panel" }, h("h2", {}, "Get messages"),
          h("form", { class: "inline", id: "get-form", onsubmit: async (event) => {
            event.preventDefault();
            const form = formData(event.target);
            try {
              const { data } = await api("POST", `${path}/get`, { count: Number(form.count),
                ackmode: form.ackmode, encoding: form.encoding, truncate: Number(form.truncate) });
              results.replaceChildren(data.length ? h("div", {}, data.map(renderMessage))
                : h("div", { class: "empty" }, "Queue is empty"));
              refresh();
            } catch (err) { notice(`get failed: ${err.message}`, true); }
          } },
          h("label", {}, "Ack mode", h("select", { name: "ackmode" },
            h("option", { value: "ack_requeue_true" }, "Nack, requeue"),
            h("option", { value: "reject_requeue_false" }, "Reject, no requeue"),
            h("option", { value: "ack_requeue_false" }, "Ack (remove)"))),
          h("label", {}, "Encoding", h("select", { name: "encoding" },
            h("option", { value: "auto" }, "auto (string or base64)"),
            h("option", { value: "base64" }, "base64"))),
          h("label", {}, "Messages", h("input", { name: "count", type: "number", value: "1", min: "1" })),
          h("label", {}, "Truncate", h("input", { name: "truncate", type: "number", value: "50000" })),
          h("button", { class: "primary", type: "submit" }, "Get messages")), results),
        h("section", { class: "panel" }, h("h2", {}, "Add binding"),
          h("form", { class: "inline", id: "bind-form", onsubmit: (event) => {
            event.preventDefault();
            const form = formData(event.target);
            act("binding added", () => api("POST", `/bindings/${enc(vhost)}/e/${enc(form.source)}/q/` +
              enc(name), { routing_key: form.routing_key, arguments: jsonField(form.arguments, "arguments") }));
          } }, h("label", {}, "From exchange", h("input", { name: "source", required: true })),
          h("label", {}, "Routing key", h("input", { name: "routing_key" })),
          h("label", {}, "Arguments (JSON)", h("input", { name: "arguments", placeholder: "{}" })),
          h("button", { type: "submit" }, "Bind"))),
        h("section", { class: "panel" },
          h("button", { class: "danger", id: "purge", onclick: () => {
            if (confirm(`Purge every ready message of ${name}?`)) {
              act(`queue ${name} purged`, () => api("DELETE", `${path}/contents`));
            } } }, "Purge messages"), " ",
          h("button", { class: "danger", onclick: () => {
            if (confirm(`Delete queue ${name}?`)) {
              act(`queue ${name} deleted`, async () => { await api("DELETE", path); location.hash = "#/queues"; });
            } } }, "Delete queue")));
    },
    async update() {
      const [{ data: q }, { data: bindings }] = await Promise.all([
        api("GET", path), api("GET", `${path}/bindings`)]);
      const stats = q.message_stats || {};
      show(h("section", { class: "panel" }, props([
        ["Vhost", q.vhost], ["Type", q.type], ["Features", h("span", {}, flags(q))],
        ["Ready", num(q.messages_ready)], ["Unacked", num(q.messages_unacknowledged)],
        ["Total", num(q.messages)], ["Consumers", num(q.consumers)],
        ["Incoming", rate(stats.publish_details)], ["Deliver / get", rate(stats.deliver_get_details)],
        ["Ack", rate(stats.ack_details)]])),
      h("h2", {}, "Consumers"), table(CONSUMER_COLUMNS, q.consumer_details, "no consumers"),
      h("h2", {}, "Bindings"), table([...BINDING_COLUMNS, ["", unbind]], bindings));
    },
  };
};

pages.exchange = (vhost, name) => {
  const path = `/exchanges/${enc(vhost)}/${enc(name)}`;
  let show, result;
  return {
    mount(root) {
      show = live(root);
      result = h("p", { id: "publish-result" });
      root.prepend(h("h1", {}, `Exchange ${name === "amq.default" ? "(AMQP default)" : name}`));
      root.append(h("section", { class: "panel" }, h("h2", {}, "Publish message"),
        h("form", { class: "stack", id: "publish-form", onsubmit: async (event) => {
          event.preventDefault();
          const form = formData(event.target);
          try {
            const properties = { ...jsonField(form.properties, "properties") };
            if (form.delivery_mode) properties.delivery_mode = Number(form.delivery_mode);
            const headers = jsonField(form.headers, "headers");
            if (Object.keys(headers).length) properties.headers = headers;
            const { data } = await api("POST", `${path}/publish`, { routing_key: form.routing_key,
              payload: form.payload, payload_encoding: form.payload_encoding, properties });
            result.className = data.routed ? "ok" : "error";
            result.textContent = data.routed ? "Message published." : "Message published, but not routed.";
            refresh();
          } catch (err) { result.className = "error"; result.textContent = err.message; }
        } },
        h("label", {}, "Routing key", h("input", { name: "routing_key" })),
        h("label", {}, "Delivery mode", h("select", { name: "delivery_mode" },
          h("option", { value: "" }, "(not set)"), h("option", { value: "1" }, "1 - non-persistent"),
          h("option", { value: "2" }, "2 - persistent"))),
        h("label", {}, "Headers (JSON)", h("input", { name: "headers", placeholder: "{}" })),
        h("label", {}, "Properties (JSON)", h("input", { name: "properties",
          placeholder: '{"content_type": "text/plain"}' })),
        h("label", {}, "Payload", h("textarea", { name: "payload" })),
        h("label", {}, "Payload encoding", h("select", { name: "payload_encoding" },
          h("option", { value: "string" }, "string"), h("option", { value: "base64" }, "base64"))),
        h("button", { class: "primary", type: "submit" }, "Publish message")), result));
      if (name !== "amq.default" && !name.startsWith("amq.")) {
        root.append(h("section", { class: "panel" }, h("button", { class: "danger", onclick: () => {
          if (confirm(`Delete exchange ${name}?`)) {
            act(`exchange ${name} deleted`, async () => { await api("DELETE", path); location.hash = "#/exchanges"; });
          } } }, "Delete exchange")));
      }
    },
    async update() {
      const [{ data: x }, { data: out }] = await Promise.all([
        api("GET", path), api("GET", `${path}/bindings/source`)]);
      show(h("section", { class: "panel" }, props([
        ["Vhost", x.vhost], ["Type", x.type], ["Features", h("span", {}, flags(x))]])),
      h("h2", {}, "Bindings from this exchange"), table([...BINDING_COLUMNS, ["", unbind]], out));
    },
  };
};

pages.definitions = () => ({
  mount(root) {
    const status = h("p", { id: "import-result" });
    root.append(h("h1", {}, "Definitions"),
      h("section", { class: "panel" }, h("h2", {}, "Export"),
        h("p", {}, "Exchanges, queues and bindings as RabbitMQ's definitions JSON."),
        h("button", { class: "primary", id: "export", onclick: async () => {
          const { data } = await api("GET", "/definitions");
          const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)],
            { type: "application/json" }));
          h("a", { href: url, download: "minibroker-definitions.json" }).click();
          setTimeout(() => URL.revokeObjectURL(url), 1000);
        } }, "Download definitions")),
      h("section", { class: "panel" }, h("h2", {}, "Import"),
        h("form", { class: "stack", id: "import-form", onsubmit: async (event) => {
          event.preventDefault();
          const file = event.target.elements.file.files[0];
          const text = file ? await file.text() : event.target.elements.text.value;
          try {
            await api("POST", "/definitions", text);
            status.className = "ok";
            status.textContent = "Definitions imported.";
          } catch (err) { status.className = "error"; status.textContent = err.message; }
        } }, h("label", {}, "File", h("input", { type: "file", name: "file", accept: ".json" })),
        h("label", {}, "…or paste JSON", h("textarea", { name: "text" })),
        h("button", { class: "primary", type: "submit" }, "Import definitions")), status));
  },
  async update() {},
});

