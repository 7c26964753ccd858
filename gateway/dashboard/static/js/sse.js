// Server-sent events read from a fetch response (EventSource cannot send the
// Authorization header). Yields {data} for each event and {comment} for comment lines,
// such as the gateway's ": loading <model> <seconds>" while a stream waits for a load.

export async function* serverEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replaceAll("\r\n", "\n");
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        yield* parse(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf("\n\n");
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function* parse(block) {
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
    else if (line.startsWith(":")) yield { comment: line.slice(1).trim() };
  }
  if (data.length) yield { data: data.join("\n") };
}
