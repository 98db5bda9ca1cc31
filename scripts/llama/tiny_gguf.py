"""Write a tiny random-weight Llama-architecture GGUF that carries a real tokenizer.

llama.cpp's server needs a model to serve; raterd's tests need the server's real request
handling, chat templates, tokenizer, logprobs and constrained decoding, not a model that
judges well. So the weights are random (a fixed seed: the same file every time), the
network is tiny (2 layers, 64 wide: it loads in milliseconds and answers at hundreds of
tokens a second on one core), and the tokenizer is a real one: the vocabulary, merges,
token types and special tokens are copied from one of the vocabulary files llama.cpp
ships (models/ggml-vocab-*.gguf, in the llama-cpp-python sdist).

Usage: tiny_gguf.py VOCAB.gguf OUT.gguf NAME
"""

import sys

import gguf
import numpy as np

EMBED, LAYERS, HEADS, KV_HEADS, FF, CONTEXT = 64, 2, 4, 2, 128, 4096


def copy_tokenizer(reader, writer):
    """Copies every tokenizer.* key of the vocabulary file."""
    for name, field in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        types = field.types
        value = field.contents()
        if types[0] == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(name, value, types[0], sub_type=types[1])
        else:
            writer.add_key_value(name, value, types[0])


def main(vocab_path, out_path, name):
    reader = gguf.GGUFReader(vocab_path)
    vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    rng = np.random.default_rng(20261207)
    w = gguf.GGUFWriter(out_path, "llama")
    w.add_name(name)
    w.add_context_length(CONTEXT)
    w.add_embedding_length(EMBED)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(EMBED // HEADS)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    copy_tokenizer(reader, w)

    def tensor(tname, *shape, scale=0.2):
        # numpy shape is (rows, cols) = GGUF's (ne1, ne0) reversed.
        w.add_tensor(tname, (rng.standard_normal(shape) * scale).astype(np.float16))

    def ones(tname, n):
        w.add_tensor(tname, np.ones(n, dtype=np.float32))

    head_dim = EMBED // HEADS
    tensor("token_embd.weight", vocab, EMBED, scale=1.0)
    ones("output_norm.weight", EMBED)
    # No output.weight: llama.cpp ties the output layer to token_embd.
    for i in range(LAYERS):
        ones(f"blk.{i}.attn_norm.weight", EMBED)
        tensor(f"blk.{i}.attn_q.weight", EMBED, EMBED)
        tensor(f"blk.{i}.attn_k.weight", KV_HEADS * head_dim, EMBED)
        tensor(f"blk.{i}.attn_v.weight", KV_HEADS * head_dim, EMBED)
        tensor(f"blk.{i}.attn_output.weight", EMBED, EMBED)
        ones(f"blk.{i}.ffn_norm.weight", EMBED)
        tensor(f"blk.{i}.ffn_gate.weight", FF, EMBED)
        tensor(f"blk.{i}.ffn_up.weight", FF, EMBED)
        tensor(f"blk.{i}.ffn_down.weight", EMBED, FF)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: tiny_gguf.py VOCAB.gguf OUT.gguf NAME")
    main(*sys.argv[1:])
