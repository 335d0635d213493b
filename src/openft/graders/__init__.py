"""OpenAI's graders: one grader JSON turns a model sample and a dataset item into a reward.

One implementation serves every caller: the alpha graders endpoints, the reinforcement recipe and the
Evals API's testing criteria (`criteria`). `validate.validate_grader` checks a grader as a client sent
it; `run.grade_samples` scores samples with it. One module per grader type (`string_check`,
`text_similarity`, `python_sandbox`, `model_graders`, `multi`), `templates` and `sample` for the
`{{item.x}}` / `{{sample.output_text}}` references. Pure Python: no torch, HTTP or SQL; a python grader
runs in a sandboxed process and model graders call a `Judge` the caller provides.
"""
