// The openai JS SDK (v5) against the gateway: chat, stream, tools (whole and streamed),
// structured output, the Responses API (whole and streamed) and embeddings (floats and the
// SDK's default base64). The models come from GATEWAYZ_MODEL and GATEWAYZ_EMBED_MODEL.
// Prints one JSON object of what each call returned; `usage` lists every answer's own
// usage in order: input and output tokens and `cost` (dollars), for the billing check.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.GATEWAYZ_BASE_URL,
  apiKey: process.env.GATEWAYZ_API_KEY,
  maxRetries: 0,
});
const model = process.env.GATEWAYZ_MODEL;
const embedModel = process.env.GATEWAYZ_EMBED_MODEL;
const usage = [];
const out = { usage };
const chatUsage = (u) => usage.push({ input: u.prompt_tokens, output: u.completion_tokens, cost: u.cost });

const chat = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "hello from node" }],
});
out.chat = chat.choices[0].message.content;
chatUsage(chat.usage);

let streamed = "";
let streamUsage = null;
const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "stream this please" }],
  stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  streamed += chunk.choices[0]?.delta?.content ?? "";
  if (chunk.usage) streamUsage = chunk.usage;
}
out.stream = streamed;
chatUsage(streamUsage);

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "The weather in a city.",
      parameters: {
        type: "object",
        properties: { city: { type: "string" } },
        required: ["city"],
        additionalProperties: false,
      },
      strict: true,
    },
  },
];
const weather = [{ role: "user", content: "Weather in Lyon?" }];
const toolAnswer = await client.chat.completions.create({ model, messages: weather, tools });
const call = toolAnswer.choices[0].message.tool_calls[0];
out.tool = {
  finish_reason: toolAnswer.choices[0].finish_reason,
  content: toolAnswer.choices[0].message.content,
  name: call.function.name,
  arguments: JSON.parse(call.function.arguments),
};
chatUsage(toolAnswer.usage);

// A streamed tool call, put together from its deltas by hand as applications do.
const calls = [];
let finish = null;
let toolUsage = null;
const toolStream = await client.chat.completions.create({
  model,
  messages: weather,
  tools,
  stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of toolStream) {
  if (chunk.usage) toolUsage = chunk.usage;
  const choice = chunk.choices[0];
  if (!choice) continue;
  finish = choice.finish_reason ?? finish;
  for (const delta of choice.delta?.tool_calls ?? []) {
    calls[delta.index] ??= { id: "", name: "", arguments: "", deltas: 0 };
    const into = calls[delta.index];
    into.id += delta.id ?? "";
    into.name += delta.function?.name ?? "";
    into.arguments += delta.function?.arguments ?? "";
    into.deltas += 1;
  }
}
out.tool_stream = {
  finish_reason: finish,
  calls: calls.map((c) => ({ id: c.id, name: c.name, arguments: JSON.parse(c.arguments), deltas: c.deltas })),
};
chatUsage(toolUsage);

const structured = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Book a table" }],
  response_format: {
    type: "json_schema",
    json_schema: {
      name: "booking",
      strict: true,
      schema: {
        type: "object",
        properties: { restaurant: { type: "string" }, guests: { type: "integer" } },
        required: ["restaurant", "guests"],
        additionalProperties: false,
      },
    },
  },
});
out.structured = JSON.parse(structured.choices[0].message.content);
chatUsage(structured.usage);

const responsesUsage = (u) => usage.push({ input: u.input_tokens, output: u.output_tokens, cost: u.cost });
const response = await client.responses.create({ model, input: "respond to me", store: false });
out.responses = { status: response.status, text: response.output_text };
responsesUsage(response.usage);

const events = [];
let completed = null;
const responseStream = await client.responses.create({
  model,
  input: "stream a response",
  stream: true,
});
for await (const event of responseStream) {
  events.push(event.type);
  if (event.type === "response.completed") completed = event.response;
}
out.responses_stream = {
  deltas: events.filter((type) => type === "response.output_text.delta").length,
  last: events.at(-1),
  text: completed.output_text ?? completed.output[0].content[0].text,
};
responsesUsage(completed.usage);

const embeddingUsage = (u) => usage.push({ input: u.prompt_tokens, output: 0, cost: u.cost });
const texts = ["first text", "second text"];
const floats = await client.embeddings.create({ model: embedModel, input: texts, encoding_format: "float" });
embeddingUsage(floats.usage);
// No encoding_format: the SDK asks for base64 and decodes it into numbers itself.
const decoded = await client.embeddings.create({ model: embedModel, input: texts });
embeddingUsage(decoded.usage);
out.embeddings = {
  floats: floats.data.map((item) => ({ index: item.index, embedding: item.embedding })),
  decoded: decoded.data.map((item) => ({ index: item.index, embedding: item.embedding })),
};

console.log(JSON.stringify(out));
