"""The embedded demo cohort: a simulated tumour (phantom), what the instruments record of it (acquire),
its true geometry (geometry), the cohort's samples (cohort), the true metrics (truth) and the validation of
an analysis against them (validation). The only package that knows the truth."""
