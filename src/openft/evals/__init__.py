"""openft.evals: the Evals API's own data (`client.evals`): the rows of a run's data source (`items`).

The API's services are `openft.services.evals`, `eval_runs`, `eval_exec`; its graders are
`openft.graders`. Not to be confused with a fine-tuning job's evaluation (`openft.comparison`, run by
`openft.worker.job_evaluation`) or `openft eval` (docs/architecture.md, "Evaluation").
"""
