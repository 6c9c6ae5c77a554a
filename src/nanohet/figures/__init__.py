"""Figures: one module per figure family (sample, cohort, registration QC, validation), one style module.
Every PNG is written without timestamps or version strings, so reruns give identical bytes."""
