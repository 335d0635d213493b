"""OpenAI's graders: one grader JSON turns a model sample and a dataset item into a reward.

One implementation serves every caller: the alpha graders endpoints, the reinforcement recipe and the
Evals API's testing criteria. `validate.validate_grader` checks a grader as a client sent it;
`run.run_grader` scores one sample with it. Torch-free; a python grader runs in a sandboxed process
(openft.graders.python_sandbox) and model graders call a `Judge` the caller provides.
"""
