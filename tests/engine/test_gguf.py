import shutil

import pytest

from workbench.engine import ModelFileError
from workbench.engine.gguf import file_sha256, read_gguf_header


def test_default_model_header(default_model_path):
    info = read_gguf_header(default_model_path)
    assert info.architecture == "gemma3"
    assert info.chat_template is None  # a base model
    assert info.data_end == info.file_size
    assert len(file_sha256(default_model_path)) == 64


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        read_gguf_header(tmp_path / "nope.gguf")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ModelFileError, match="folder"):
        read_gguf_header(tmp_path)


def test_not_a_gguf(tmp_path):
    p = tmp_path / "model.gguf"
    p.write_text("this is a text file, not a model\n" * 10)
    with pytest.raises(ModelFileError, match="not a GGUF"):
        read_gguf_header(p)


@pytest.mark.parametrize("keep", [64, 1 << 20, -4096])
def test_truncated_copies(default_model_path, tmp_path, keep):
    """Cut inside the header, inside the tensor table, and a few KB short of the end."""
    size = default_model_path.stat().st_size
    n = keep if keep > 0 else size + keep
    p = tmp_path / "cut.gguf"
    with open(default_model_path, "rb") as src, open(p, "wb") as dst:
        dst.write(src.read(n))
    with pytest.raises(ModelFileError, match="truncated"):
        read_gguf_header(p)


def test_full_copy_passes(default_model_path, tmp_path):
    p = tmp_path / "copy.gguf"
    shutil.copyfile(default_model_path, p)
    assert read_gguf_header(p).n_tensors > 0


def test_auto_parallel_sizes_the_kv_cache(default_model_path):
    from workbench.engine.llama import auto_parallel

    assert auto_parallel(read_gguf_header(default_model_path).metadata, 1024) == 32  # tiny model: the cap
    llama7b = {"general.architecture": "llama", "llama.block_count": 32, "llama.attention.head_count": 32,
               "llama.attention.head_count_kv": 8, "llama.embedding_length": 4096}
    assert auto_parallel(llama7b, 1024) == 16  # 128 KiB of KV per token: 2 GiB holds 16 x 1024 tokens
    assert auto_parallel(llama7b, 32768) == 1
