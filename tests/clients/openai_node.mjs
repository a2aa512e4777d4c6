// The openai JS SDK (v5) against the gateway: chat, stream, tools, structured output,
// the Responses API and embeddings. Prints one JSON object of what each call returned;
// `costs` lists every answer's own `usage.cost` (dollars) for the balance check.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.GATEWAYZ_BASE_URL,
  apiKey: process.env.GATEWAYZ_API_KEY,
  maxRetries: 0,
});
const model = "mock/echo";
const costs = [];
const out = {};

const chat = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "hello from node" }],
});
out.chat = chat.choices[0].message.content;
costs.push(chat.usage.cost);

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
costs.push(streamUsage.cost);

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
const toolAnswer = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Weather in Lyon?" }],
  tools,
});
const call = toolAnswer.choices[0].message.tool_calls[0];
out.tool = {
  finish_reason: toolAnswer.choices[0].finish_reason,
  name: call.function.name,
  arguments: JSON.parse(call.function.arguments),
};
costs.push(toolAnswer.usage.cost);

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
costs.push(structured.usage.cost);

const response = await client.responses.create({ model, input: "respond to me", store: false });
out.responses = { status: response.status, text: response.output_text };
costs.push(response.usage.cost);

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
costs.push(completed.usage.cost);

// No encoding_format: the SDK asks for base64 and decodes it into numbers itself.
const embeddings = await client.embeddings.create({
  model: "mock/embed",
  input: ["first text", "second text"],
});
out.embeddings = embeddings.data.map((item) => ({
  index: item.index,
  length: item.embedding.length,
  numbers: item.embedding.every((value) => typeof value === "number" && Number.isFinite(value)),
}));
costs.push(embeddings.usage.cost);

out.costs = costs;
console.log(JSON.stringify(out));
