"""The search stage, what `python -m search.run` drives: the configuration composed and checked
(`config`), the spaces as grid points, Tune and Optuna spaces (`spaces`), Ray and Tune set up
and run (`runner`), one trial's training on a Ray worker (`trainable`), the live console
(`console`), and the leaderboard read from the trials' folders (`leaderboard`).
"""
