"""`ioprof try`: make the analysis' recommended changes at their tf.data call sites, inside
the job (nothing on disk is edited), rerun it, and measure each change's gain with its
confidence interval beside what the analysis predicted. See session.py for the steps."""
