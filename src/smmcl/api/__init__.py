"""The small public Python API; the CLI calls these and nothing deeper.

Importing it imports no PyTorch: what needs PyTorch (training, PyTorch models, evaluation, export) imports it
inside the function, so that a runtime without it (numpy and ONNX Runtime or OpenVINO: `Predictor`, `open_model`
on an ONNX export) can use the API.

One module per side of the work, each function in one place:
- `training`: train, dry_run, run_study, make_synthetic, check_data, convert_hha, run_demo;
- `models`: open_model, load_trained, evaluate_checkpoint, predict, model_info, model_config, read_model_source,
  analyze_features, report;
- `deploy`: predict_recording, list_topics, export, convert;
- `_shared`: what they share (the 0.2 keyword spellings, sizes, the inference protocol, backend names).
"""

from smmcl.api._shared import BACKENDS, CONVERT_FORMATS, inference_protocol
from smmcl.api.deploy import convert, export, list_topics, predict_recording
from smmcl.api.models import (analyze_features, evaluate_checkpoint, load_trained, model_config, model_info, open_model,
                              predict, read_model_source, report)
from smmcl.api.training import check_data, convert_hha, dry_run, make_synthetic, run_demo, run_study, train
from smmcl.data.classes import class_names, dataset_palette
from smmcl.deploy.predictor import Predictor
from smmcl.model_file import ModelFile, is_model_file, open_model_file

__all__ = [
    "BACKENDS", "CONVERT_FORMATS", "ModelFile", "Predictor", "analyze_features", "check_data", "class_names",
    "convert", "convert_hha", "dataset_palette", "dry_run", "evaluate_checkpoint", "export", "inference_protocol",
    "is_model_file", "list_topics", "load_trained", "make_synthetic", "model_config", "model_info", "open_model", "open_model_file",
    "predict", "predict_recording", "read_model_source", "report", "run_demo", "run_study", "train",
]
