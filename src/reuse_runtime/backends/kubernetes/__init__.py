"""`KubernetesBackend`: replicas as pods, through the official ``kubernetes`` client.

Each replica is one Pod (:func:`pod_manifest` writes it; the tests validate it
against the Kubernetes schemas):

* **the image** of the environment's ``Image``, named in a registry
  (:func:`reuse_runtime.images.registry.registry_reference`: the controller's
  ``--image-registry`` unless the recipe names its own); the controller never
  builds: ``reuse-runtime image build FILE.py --registry R --push`` does that;
* **the worker** ``reuse-runtime-init reuse-runtime worker --controller
  SERVICE:PORT ...`` on port 50051, dialling the controller through its
  Service (``--advertise-address``), and dialling it again for a while after
  losing it, so a restarted controller can adopt it (``--reconnect``);
* **the token** from a Secret mounted read-only (``$REUSE_RUNTIME_TOKEN_FILE``),
  never a literal in the spec;
* **requests and limits** from ``Resources`` (``cpu``, ``memory``, ``gpu`` as
  ``nvidia.com/gpu``, ``disk`` as ``ephemeral-storage``, ``shm`` as a memory
  ``emptyDir`` on ``/dev/shm``);
* **a native gRPC readiness probe** against the worker's health service;
* **labels** naming the controller and the environment, and the exact ids in
  annotations; ``terminationGracePeriodSeconds`` from the drain's grace;
* **an ownerReference** to the controller's own pod when the controller runs in
  the cluster, so Kubernetes deletes the replicas when that pod goes.

It needs these API calls, and no others (the Role of ``reuse-runtime k8s
manifests`` grants exactly them; :data:`API_CALLS` lists them for the test
that checks): pods ``create``, ``delete``, ``get``, ``list`` and ``watch``.

One watch per backend follows its pods (a relist covers a broken watch). A pod
that ends says how: ``OOMKilled`` (with the memory limit), ``Evicted``,
an exit code or signal; one that stays ``Pending`` (unschedulable, or its image
cannot be pulled: ``ImagePullBackOff``) past ``start_deadline`` is deleted and
reported with the reason Kubernetes gave.

**Adoption.** On ``open()`` a controller lists the live pods that carry its
name: a predecessor's (same name, and in the cluster the same controller pod,
restarted). Each pool claims its environment's pods when it is created
(:meth:`KubernetesBackend.claim`) and starts no fresh one for them; their
workers dial the Service again and are taken back, warm. Pods nobody claims
within ``adopt_window`` are deleted.

In the cluster the backend uses the pod's service account; outside, the
kubeconfig (``$KUBECONFIG``, else ``~/.kube/config``).
"""

from reuse_runtime.backends.kubernetes.backend import API_CALLS, KubernetesBackend, PodReplica
from reuse_runtime.backends.kubernetes.config import (
    DEFAULT_NAME,
    NAME_ENV,
    NAMESPACE_ENV,
    POD_LABELS_ENV,
    POD_NAME_ENV,
    REGISTRY_ENV,
    SERVICE_ACCOUNT_DIR,
    TOKEN_SECRET_ENV,
    KubernetesConfig,
)
from reuse_runtime.backends.kubernetes.podspec import (
    CONTROLLER_LABEL,
    ENV_KEY_ANNOTATION,
    ENV_KEY_LABEL,
    ENVIRONMENT_ANNOTATION,
    ENVIRONMENT_LABEL,
    INIT_DIR_ENV,
    INSTANCE_LABEL,
    LABEL,
    MEMORY_LIMIT_ANNOTATION,
    RECORD_MOUNT,
    REPLICA_ID_ANNOTATION,
    REPLICA_LABEL,
    TERMINATION_LOG,
    TERMINATION_LOG_ENV,
    TOKEN_KEY,
    TOKEN_MOUNT,
    WORKER_CONTAINER,
    WORKER_PORT,
    label_value,
    pod_manifest,
    pod_name,
    pod_resources,
)
from reuse_runtime.backends.kubernetes.podstatus import exit_status, pending_reason

__all__ = [
    "API_CALLS",
    "CONTROLLER_LABEL",
    "DEFAULT_NAME",
    "ENVIRONMENT_ANNOTATION",
    "ENVIRONMENT_LABEL",
    "ENV_KEY_ANNOTATION",
    "ENV_KEY_LABEL",
    "INIT_DIR_ENV",
    "INSTANCE_LABEL",
    "LABEL",
    "MEMORY_LIMIT_ANNOTATION",
    "NAMESPACE_ENV",
    "NAME_ENV",
    "POD_LABELS_ENV",
    "POD_NAME_ENV",
    "RECORD_MOUNT",
    "REGISTRY_ENV",
    "REPLICA_ID_ANNOTATION",
    "REPLICA_LABEL",
    "SERVICE_ACCOUNT_DIR",
    "TERMINATION_LOG",
    "TERMINATION_LOG_ENV",
    "TOKEN_KEY",
    "TOKEN_MOUNT",
    "TOKEN_SECRET_ENV",
    "WORKER_CONTAINER",
    "WORKER_PORT",
    "KubernetesBackend",
    "KubernetesConfig",
    "PodReplica",
    "exit_status",
    "label_value",
    "pending_reason",
    "pod_manifest",
    "pod_name",
    "pod_resources",
]
