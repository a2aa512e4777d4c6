// The Vercel AI SDK (v5, @ai-sdk/openai v2) against the gateway: generateText and
// streamText through the Responses API (the provider's default) and the chat API,
// generateObject with a zod schema, a tool call (generated and streamed), embed and
// embedMany. The models come from GATEWAYZ_MODEL and GATEWAYZ_EMBED_MODEL. Prints one JSON
// object; `calls` counts the requests made, each of which the gateway bills.
import { createOpenAI } from "@ai-sdk/openai";
import { embed, embedMany, generateObject, generateText, streamText, tool } from "ai";
import { z } from "zod";

const openai = createOpenAI({
  baseURL: process.env.GATEWAYZ_BASE_URL,
  apiKey: process.env.GATEWAYZ_API_KEY,
});
const model = process.env.GATEWAYZ_MODEL;
const out = {};
let calls = 0;

const usage = (u) => ({ input: u.inputTokens, output: u.outputTokens });

const responsesText = await generateText({ model: openai(model), prompt: "hello responses", maxRetries: 0 });
out.responses_text = { text: responsesText.text, usage: usage(responsesText.usage) };
calls += 1;

const chatText = await generateText({ model: openai.chat(model), prompt: "hello chat", maxRetries: 0 });
out.chat_text = { text: chatText.text, usage: usage(chatText.usage) };
calls += 1;

for (const [name, chosen] of [
  ["responses_stream", openai(model)],
  ["chat_stream", openai.chat(model)],
]) {
  const result = streamText({ model: chosen, prompt: `streamed via ${name}`, maxRetries: 0 });
  let text = "";
  for await (const part of result.textStream) text += part;
  out[name] = { text, usage: usage(await result.usage) };
  calls += 1;
}

const booking = z.object({ restaurant: z.string(), guests: z.number().int() });
for (const [name, chosen] of [
  ["responses_object", openai(model)],
  ["chat_object", openai.chat(model)],
]) {
  const result = await generateObject({ model: chosen, schema: booking, prompt: "Book a table", maxRetries: 0 });
  out[name] = result.object;
  calls += 1;
}

const weather = tool({
  description: "The weather in a city.",
  inputSchema: z.object({ city: z.string() }),
});
for (const [name, chosen] of [
  ["responses_tool", openai(model)],
  ["chat_tool", openai.chat(model)],
]) {
  const result = await generateText({
    model: chosen,
    tools: { weather },
    prompt: "Weather in Lyon?",
    maxRetries: 0,
  });
  out[name] = {
    finishReason: result.finishReason,
    calls: result.toolCalls.map((c) => ({ name: c.toolName, input: c.input })),
    usage: usage(result.usage),
  };
  calls += 1;
}

for (const [name, chosen] of [
  ["responses_tool_stream", openai(model)],
  ["chat_tool_stream", openai.chat(model)],
]) {
  const result = streamText({ model: chosen, tools: { weather }, prompt: "Weather in Lyon?", maxRetries: 0 });
  const deltas = [];
  for await (const part of result.fullStream) {
    if (part.type === "tool-input-delta") deltas.push(part.delta);
    if (part.type === "error") throw part.error;
  }
  out[name] = {
    finishReason: await result.finishReason,
    calls: (await result.toolCalls).map((c) => ({ name: c.toolName, input: c.input })),
    deltas: deltas.join(""),
    usage: usage(await result.usage),
  };
  calls += 1;
}

const embedder = openai.textEmbeddingModel(process.env.GATEWAYZ_EMBED_MODEL);
const single = await embed({ model: embedder, value: "one text", maxRetries: 0 });
out.embed = { embedding: single.embedding, tokens: single.usage.tokens };
calls += 1;
const many = await embedMany({ model: embedder, values: ["first", "second", "third"], maxRetries: 0 });
out.embed_many = { embeddings: many.embeddings, tokens: many.usage.tokens };
calls += 1;

out.calls = calls;
console.log(JSON.stringify(out));
