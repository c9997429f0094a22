"""A causal language model as a recommender (notebook 17): prompts, scoring, constrained decoding, LoRA.

* ``prompts``     - :class:`PromptFormat`, :func:`build_prompt`: a history as text ("watched : ... ; next :")
* ``tokenizer``   - :func:`train_word_tokenizer`: a word-level tokenizer trained on the catalogue, as a
  ``transformers`` tokenizer (nothing from a hub)
* ``scoring``     - :func:`candidate_log_likelihoods`: log P(title ; | prompt) for each candidate
* ``constrained`` - :class:`TitleTrie`, :func:`generate_titles`: greedy decoding, free or limited to real titles
* ``lora``        - :class:`LoRALinear`, :func:`apply_lora`: a low-rank update on frozen linear layers

Training, saving and loading the small GPT-2 live in :mod:`course_lib.bench.recipes.lm_ranker`
(models do not train themselves).
"""
