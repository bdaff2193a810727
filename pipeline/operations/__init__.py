"""Operations: what the commands do, printing nothing: a run and its outcome, retraining on spans, the serving
directory's versions, the preflight of input files."""
