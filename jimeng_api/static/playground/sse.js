// Server-sent events over fetch: a line parser that copes with events split across
// network chunks (and with \r\n split between two chunks), plus a reader loop.
// Follows https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

const LINE_END = /\r\n|\r|\n/g;

/**
 * Create a push parser. `onEvent({event, data})` is called once per dispatched event;
 * comment lines (": keep-alive") go to `onComment(text)` if given and are otherwise
 * ignored. If `onEvent` returns `true`, the caller may stop reading.
 */
export function createSSEParser(onEvent, onComment = () => {}) {
  let buffer = "";
  let dataLines = [];
  let eventType = "";
  let stop = false;

  function dispatch() {
    if (dataLines.length) {
      const event = { event: eventType || "message", data: dataLines.join("\n") };
      if (onEvent(event) === true) stop = true;
    }
    dataLines = [];
    eventType = "";
  }

  function processLine(line) {
    if (line === "") return dispatch();
    if (line.startsWith(":")) return onComment(line.slice(1).trim());
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") dataLines.push(value);
    else if (field === "event") eventType = value;
    // "id" and "retry" mean nothing to a one-shot fetch stream; unknown fields are ignored
  }

  return {
    /** Feed decoded text; returns true once `onEvent` asked to stop. */
    push(text) {
      buffer += text;
      let start = 0;
      LINE_END.lastIndex = 0;
      let match;
      while (!stop && (match = LINE_END.exec(buffer))) {
        // a lone trailing \r may be the first half of a \r\n: wait for more text
        if (match[0] === "\r" && match.index === buffer.length - 1) break;
        processLine(buffer.slice(start, match.index));
        start = LINE_END.lastIndex;
      }
      buffer = buffer.slice(start);
      return stop;
    },
    /** The stream ended: handle a last line / event even without its blank line. */
    end() {
      if (!stop && buffer) {
        for (const line of buffer.split(LINE_END)) if (!stop) processLine(line);
      }
      buffer = "";
      if (!stop) dispatch();
      return stop;
    },
  };
}

/**
 * Read a fetch `Response` body as an event stream until it ends or `onEvent`
 * returns true. Errors thrown by `onEvent` cancel the body and propagate.
 */
export async function readEventStream(response, onEvent, onComment) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder("utf-8"); // stream mode keeps split multi-byte chars
  const parser = createSSEParser(onEvent, onComment);
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        parser.push(decoder.decode());
        parser.end();
        finished = true;
        return;
      }
      if (parser.push(decoder.decode(value, { stream: true }))) return;
    }
  } finally {
    if (!finished) reader.cancel().catch(() => {});
  }
}
