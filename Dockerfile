# The image every component of the compiled Kubeflow pipeline runs (`python -m pipeline compile --image ...`).
# Built FROM the official TFX 1.16.0 image, which holds TFX, TensorFlow 2.16, Beam and kfp; this adds the
# project's code (its module functions resolve by import path: components.trainer.module.run_fn) and schemas.
# It holds no credentials: the cluster gives the pods their identity (workload identity, a mounted secret).
FROM gcr.io/tfx-oss-public/tfx:1.16.0

# tf_keras (Keras 2) in every process, set before TensorFlow is imported; the project importable from any cwd.
ENV TF_USE_LEGACY_KERAS=1 \
    PYTHONPATH=/opt/multihead \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# The lock's versions of what the code imports beyond TFX (pip keeps them if the base image has them), and the
# unprivileged user the components run as.
RUN python -m pip install --no-cache-dir "tf-keras==2.16.0" "pyyaml==6.0.3" \
    && useradd --uid 1000 --create-home --shell /usr/sbin/nologin pipeline

WORKDIR /opt/multihead
COPY --chown=root:root pipeline/ pipeline/
COPY --chown=root:root components/ components/
COPY --chown=root:root schemas/ schemas/

USER 1000
