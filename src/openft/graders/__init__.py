"""openft.graders: graders that score a model's output against a reference, as OpenAI defines them.

`criteria` checks a grader config and grades one (item, sample) pair with it (today: the Evals API's
`testing_criteria`); one module per grader type holds its arithmetic (`string_check`,
`text_similarity`), and `templates` renders the `{{item.x}}` / `{{sample.output_text}}` references they
read. A new grader type is a module here plus its entry in `criteria`; the same configs are meant to
serve reinforcement fine-tuning and the alpha graders endpoints. Pure Python: no torch, HTTP or SQL.
"""
