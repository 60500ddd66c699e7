"""Churn sample: feature engineering (Python, ``features``) and scoring (R, ``scoring.R``)."""
