"""openft.comparison: base against fine-tuned on a test set, scored, as JSON and an HTML report.

Used by `openft eval` (offline, `cli/eval.py`) and by a job's end-of-job evaluation
(`openft.worker.job_evaluation`). `testset` reads test files, `metrics` holds the answer metrics,
`runners` the runner protocol with `local_runner` (the inference engine that serves
/v1/chat/completions, in this process) and `sdk_runner` (a server through the openai SDK), `compare` the
comparison and its JSON, `html_report` the HTML page. Importing the package loads no torch.
"""
