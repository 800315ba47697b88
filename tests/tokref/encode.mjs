// encode.mjs — reference tokenizations: reads {"tokenizer": path, "max_length": n or 0,
// "texts": [...]} on stdin and writes one JSON object per text to stdout:
// {"ids", "tokens", "offsets", "special"} from Hugging Face's tokenizers library
// (offsets in code points of the text, as the library's bindings report them).
import { readFileSync } from 'node:fs';
import tk from 'tokenizers';

const req = JSON.parse(readFileSync(0, 'utf8'));
const tok = tk.Tokenizer.fromString(readFileSync(req.tokenizer, 'utf8'));
if (req.max_length) tok.setTruncation(req.max_length);
const out = [];
for (const text of req.texts) {
  const e = await tok.encode(text);
  out.push({ ids: e.getIds(), tokens: e.getTokens(), offsets: e.getOffsets(), special: e.getSpecialTokensMask() });
}
process.stdout.write(JSON.stringify(out) + '\n');
