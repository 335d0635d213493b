"""openft.experiments: experiments that train models and compare them (`openft experiment ...`).

`data_scaling` trains on nested subsets of a training file and scores each model with
`openft.comparison`; `scaling` fits and summarises the result, `scaling_html` renders it.
"""
