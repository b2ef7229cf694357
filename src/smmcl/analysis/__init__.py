"""Analyses of trained models: the feature space of the paper's Fig. 8."""

from smmcl.analysis.features import analyze_models, collect_features, feature_scores

__all__ = ["analyze_models", "collect_features", "feature_scores"]
