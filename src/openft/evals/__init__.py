"""openft.evals: run a test set through base and fine-tuned models, score the answers, report.

Comparisons (`openft eval`, docs/evaluation.md): `testset` reads test files, `metrics` holds the answer
metrics, `runners` the runner protocol with `local` (torch in this process) and `sdk` (a server through
the openai SDK), `compare` the comparison and its JSON, `html_report` the HTML page. Importing the
package loads no torch: only `local` does.
"""
