package format

import (
	"crypto/sha256"
	"strings"
)

// chatTokenEscapes are the [old, new] pairs that keep text from writing a chat
// template's special token (Llama 3, ChatML, Phi, Gemma, Llama 2 and Mistral): llama.cpp,
// and Hugging Face tokenizers behind vLLM, read them as special tokens inside a message's
// content. Every format escapes them in judged text after its own escape pairs (compile
// appends them), and they enter every format's fingerprint; judges that send record text
// as chat messages of their own use EscapeChatTokens.
func chatTokenEscapes() []string {
	return []string{
		"<|", "‹|",
		"<start_of_turn>", "‹start_of_turn>",
		"<end_of_turn>", "‹end_of_turn>",
		"<s>", "‹s>",
		"</s>", "‹/s>",
		"[INST]", "［INST]",
		"[/INST]", "［/INST]",
		"<<SYS>>", "‹<SYS>>",
		"<</SYS>>", "‹</SYS>>",
	}
}

// EscapeChatTokens replaces chat templates' special tokens in s with look-alikes, as the
// formats do in judged text: for judges that send record text as chat messages of their
// own (the guard formats).
func EscapeChatTokens(s string) string {
	return strings.NewReplacer(chatTokenEscapes()...).Replace(s)
}

// promptFingerprint hashes what shapes a format's prompts: the file up to its guides and
// the chat-token escapes every format applies.
func promptFingerprint(promptPart []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(promptPart)
	h.Write([]byte("\x00chat-token escapes\x00"))
	h.Write([]byte(strings.Join(chatTokenEscapes(), "\x00")))
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}
