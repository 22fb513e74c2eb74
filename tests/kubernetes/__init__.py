"""The kubernetes suite: stand-ins for an API server and a kubelet (pods run by Podman),
and a real cluster when $KUBECONFIG is set."""
