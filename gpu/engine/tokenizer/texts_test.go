package tokenizer

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// goldenTexts is the varied text set compared with the reference tokenizers.
func goldenTexts() []string {
	texts := []string{
		"",
		"Hello world",
		"Hello, world! How are you today?",
		"The quick brown fox jumps over the lazy dog.",
		// contractions, in every case the pattern folds
		"I'm sure you're right: they've said we'll see, he'd know, it's John's and don't worry.",
		"I'M SURE YOU'RE RIGHT, THEY'VE SAID WE'LL SEE, HE'D KNOW, IT'S DON'T",
		"'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D 'x 'sa ''s '",
		"rock'n'roll o'clock y'all ma'am 'twas",
		"She said 'hello' and \"goodbye\" — then ‘curly’ and “double” quotes.",
		// numbers: Qwen splits digits one by one, Llama 3 in groups of up to three
		"1 12 123 1234 12345 123456 1234567 12345678901234567890",
		"3.14159 2.71828 -42 +7 1e-9 6.02e23 0x1F 0b1010 0o777",
		"1,000,000 1.000.000 1 000 000 $19.99 €5 ¥100 50% 2024-01-31T12:34:56Z",
		"v1.2.3 RFC2616 A4 mp3 iPhone15 COVID-19 H2O x86_64",
		"１２３４５ ٣٤٥٦ ०१२३ Ⅻ ½ ¾ ² ³ ⑩ 𝟘𝟙𝟚",
		// white space runs, leading, trailing
		" ",
		"  ",
		"   leading spaces",
		"trailing spaces   ",
		"trailing newline\n",
		"trailing newlines\n\n\n",
		"\n",
		"\n\n",
		"\t",
		"\t\t\tindented with tabs",
		"a  b   c    d",
		"a\nb\n\nc\n\n\nd",
		"a\r\nb\r\n\r\nc",
		"line  \n  next\t\n\t next",
		" \n \n ",
		"x \t\n y",
		"spaces before newline    \nand after\n    x",
		"     ",
		"\u00a0non-breaking\u00a0spaces\u00a0\u00a0",
		"ideographic\u3000space　here",
		"em\u2003space and thin\u2009space and figure\u2007space",
		"line\u2028separator and paragraph\u2029separator",
		"zero\u200bwidth\u200cjoiners\u200d",
		"\ufeffBOM at the start",
		"vertical\vtab and form\ffeed",
		// code
		"func main() {\n\tfmt.Println(\"hello\")\n}\n",
		"def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
		"const x = {a: 1, b: [2, 3], c: () => x?.a ?? 0};\n// comment\n/* block */",
		"SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC;",
		"<div class=\"container\"><p>Hello &amp; welcome</p><br/></div>",
		"{\"key\": \"value\", \"list\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
		"#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
		"if (a && b || !c) { x += 1; y -= 2; z *= 3; w /= 4; } else if (a != b) {}",
		"    def method(self):\n        pass\n\n\n    @property\n    def value(self) -> int:\n        return self._value\n",
		"git commit -m \"fix: handle edge case\" && go test ./... | tee out.log",
		"https://example.com/path/to/page?query=value&other=123#fragment",
		"user@example.com, first.last+tag@sub.domain.org",
		"C:\\Users\\name\\Documents\\file.txt /usr/local/bin/go ~/.config",
		"```python\nprint('hi')\n```",
		"| col1 | col2 |\n|------|------|\n| a    | b    |",
		"- item one\n- item two\n  - nested\n1. first\n2. second",
		"$$\\int_0^\\infty e^{-x^2} dx = \\frac{\\sqrt{\\pi}}{2}$$",
		"!!!???...,,,;;;:::---___===+++***&&&|||",
		"((()))[[[]]]{{{}}}<<<>>>",
		"a.b.c a,b,c a-b-c a_b_c a/b/c a\\b\\c a:b:c",
		"snake_case camelCase PascalCase SCREAMING_CASE kebab-case",
		// CJK
		"你好，世界！今天天气很好。",
		"机器学习是人工智能的一个分支。",
		"日本語のテキストとカタカナ、ひらがな、漢字が混ざっています。",
		"한국어 텍스트도 포함되어 있습니다.",
		"中文English混合text测试123数字",
		"「引用」『二重』【括弧】〈山括弧〉",
		// emoji
		"😀",
		"I love pizza 🍕🍕🍕!",
		"👨‍👩‍👧‍👦 family, 👍🏽 thumbs, 🇫🇷🇯🇵 flags, 1️⃣ keycap, ❤️ heart",
		"🤖🧠💡🚀✨🔥💯",
		"emoji😀between😀words",
		// other scripts
		"Привет, как дела? Всё хорошо.",
		"Γειά σου Κόσμε",
		"مرحبا بالعالم، كيف حالك؟",
		"שלום עולם",
		"नमस्ते दुनिया, आप कैसे हैं?",
		"สวัสดีชาวโลก",
		"Xin chào thế giới, tiếng Việt có dấu",
		"Ça va? Très bien, naïve café, Größe, Æsir, Øre, Åland",
		"e\u0301 vs é, n\u0303 vs ñ, A\u030a vs Å",
		"Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǫ̗͙̿ text",
		"𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 𝐛𝐨𝐥𝐝",
		"ﬁ ﬂ ﬀ ligatures, ＦＵＬＬＷＩＤＴＨ, ｶﾀｶﾅ",
		// special and added tokens inside text
		"<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
		"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
		"<think>\nreasoning here\n</think>\n\nanswer",
		"<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>",
		"<|endoftext|><|end_of_text|>",
		"<|im_end|><|im_end|><|im_end|>",
		"text<|im_end|>text<|eot_id|>text",
		" <|im_end|> ",
		"<|im_end",
		"<|im_end|",
		"< |im_end| >",
		"<<|im_end|>>",
		"<|reserved_special_token_5|> and <|python_tag|>",
		"<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
		"<|vision_start|><|image_pad|><|vision_end|>",
		// long words and runs
		strings.Repeat("a", 1000),
		strings.Repeat("abc", 400),
		strings.Repeat("😀", 200),
		strings.Repeat("-", 300),
		strings.Repeat("=", 99) + "\n",
		strings.Repeat(" ", 500) + "x",
		strings.Repeat("\n", 100),
		strings.Repeat("ab ", 300),
		strings.Repeat("1", 100),
		"Pneumonoultramicroscopicsilicovolcanoconiosis Supercalifragilisticexpialidocious",
		"aGVsbG8gd29ybGQhIFRoaXMgaXMgYSBiYXNlNjQgZW5jb2RlZCBzdHJpbmcgdGhhdCBpcyBxdWl0ZSBsb25n" +
			strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQy", 60),
		strings.Repeat("0123456789abcdef", 120),
		// rare code points
		"\ufffd replacement \ufffd\ufffd",
		"control\x01\x02\x1f\x7f chars",
		"null\x00byte",
		"private \ue000\uf8ff use, noncharacter \ufdd0 \U0010fffd",
		"astral 𐍈 𓀀 🀄 𝄞",
		"soft\u00adhyphen and word\u2060joiner",
		"\u0085next line and \u180emongolian",
		"Kelvin \u212a, Angstrom \u212b, dotted \u0130stanbul, final \u03c2",
		"ǅ ǈ ǋ title case digraphs",
		"mixed:Hello世界123😀\tend",
		"ASCII art:\n  /\\_/\\\n ( o.o )\n  > ^ <\n",
	}
	texts = append(texts, randomTexts(60)...)
	return texts
}

// randomTexts mixes runes from every class the split patterns distinguish, with a fixed seed, to
// reach corners that hand-written texts miss.
func randomTexts(n int) []string {
	pools := []string{
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
		"0123456789٣४①½Ⅻ",
		"     \t\n\n\r\u00a0\u3000\u2003\u2028",
		".,;:!?-_()[]{}<>\"'`~@#$%^&*+=/\\|",
		"'s't're've'm'll'd'S'T",
		"你好世界機械学習한국어",
		"😀🍕👍🏽🇫🇷",
		"éèêëçñøåæœßÉ\u0301\u0308\u0323",
		"абвгдежзийклмнопрстуфхцчшщъыьэюя",
		// U+FEFF and U+0085 are left out: see TestWhiteSpaceIsUnicodeWhiteSpace.
		"\u200b\u200d\u00ad\u2060",
	}
	r := rand.New(rand.NewPCG(7, 11))
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		var b strings.Builder
		length := 20 + r.IntN(200)
		for b.Len() < length {
			pool := []rune(pools[r.IntN(len(pools))])
			run := 1 + r.IntN(6)
			for k := 0; k < run; k++ {
				b.WriteRune(pool[r.IntN(len(pool))])
			}
		}
		out = append(out, b.String())
	}
	return out
}

// corpusTexts is real text from this repository (this package's sources and the project's
// README), for the golden test and the benchmark.
func corpusTexts() ([]string, error) {
	var texts []string
	files, err := filepath.Glob("*.go")
	if err != nil {
		return nil, err
	}
	files = append(files, filepath.Join("..", "..", "..", "README.md"), filepath.Join("..", "..", "..", "gpu", "README.md"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		texts = append(texts, string(b))
	}
	return texts, nil
}
