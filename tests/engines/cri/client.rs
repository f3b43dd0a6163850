//! A blocking CRI v1 runtime-service client over containerd's unix socket
//! (the calls kubelet makes), on a single-threaded tokio runtime.

use std::path::{Path, PathBuf};

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

/// A pod's config as kubelet sends it, with metadata `name`, `uid` and
/// `namespace`, the cgroup parent `cgroup_parent`, the network namespace
/// `network` (the pod's own or the node's), a pid namespace per container
/// and a pod-wide IPC namespace: what the engine tests and the start
/// benchmark share.
pub fn pod_config(
    name: &str,
    uid: &str,
    namespace: &str,
    cgroup_parent: String,
    network: cri::NamespaceMode,
) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: namespace.into(),
            attempt: 0,
        }),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent,
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: network as i32,
                    pid: cri::NamespaceMode::Container as i32,
                    ipc: cri::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub struct Cri {
    rt: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
}

impl Cri {
    /// Connects to the CRI socket at `sock`.
    pub fn connect(sock: &Path) -> Self {
        Self::try_connect(sock).expect("connect to the CRI socket")
    }

    /// Connects to the CRI socket at `sock`, or says why not.
    pub fn try_connect(sock: &Path) -> Result<Self, tonic::transport::Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sock: PathBuf = sock.to_owned();
        let channel = rt.block_on(
            // The URI is required by tonic but unused: the connector
            // dials the socket.
            Endpoint::from_static("http://localhost").connect_with_connector(tower::service_fn(
                move |_: Uri| {
                    let sock = sock.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(sock).await?;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                    }
                },
            )),
        )?;
        Ok(Cri {
            rt,
            client: RuntimeServiceClient::new(channel),
        })
    }

    /// Runs one call (`f` gets the client and returns its future),
    /// asserting it succeeds.
    pub fn call<T, F>(
        &mut self,
        what: &str,
        f: impl FnOnce(RuntimeServiceClient<Channel>) -> F,
    ) -> T
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.try_call(what, f)
            .unwrap_or_else(|status| panic!("CRI {what}: {status}"))
    }

    /// Runs one call; the gRPC status it fails with.
    pub fn try_call<T, F>(
        &mut self,
        what: &str,
        f: impl FnOnce(RuntimeServiceClient<Channel>) -> F,
    ) -> Result<T, tonic::Status>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = std::time::Duration::from_secs(120);
        let fut = f(self.client.clone());
        match self
            .rt
            .block_on(async { tokio::time::timeout(deadline, fut).await })
        {
            Ok(result) => result.map(tonic::Response::into_inner),
            Err(_) => panic!("CRI {what}: no answer in 120s"),
        }
    }

    /// RunPodSandbox of `config` with runtime handler `handler` ("" for
    /// the default); the sandbox's id.
    pub fn run_sandbox(&mut self, config: &cri::PodSandboxConfig, handler: &str) -> String {
        let req = cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        };
        self.call("RunPodSandbox", |mut s| async move {
            s.run_pod_sandbox(req).await
        })
        .pod_sandbox_id
    }

    /// CreateContainer + StartContainer of `command` in `image`, named
    /// `name`, in the sandbox; the container's id.
    pub fn start_container(
        &mut self,
        sandbox: &str,
        sandbox_config: &cri::PodSandboxConfig,
        image: &str,
        name: &str,
        command: &[&str],
    ) -> String {
        let config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            linux: Some(cri::LinuxContainerConfig::default()),
            ..Default::default()
        };
        let req = cri::CreateContainerRequest {
            pod_sandbox_id: sandbox.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config.clone()),
        };
        let id = self
            .call("CreateContainer", |mut s| async move {
                s.create_container(req).await
            })
            .container_id;
        let req = cri::StartContainerRequest {
            container_id: id.clone(),
        };
        self.call("StartContainer", |mut s| async move {
            s.start_container(req).await
        });
        id
    }

    /// StopContainer (with `timeout` seconds before SIGKILL) and
    /// RemoveContainer.
    pub fn remove_container(&mut self, id: &str, timeout: i64) {
        let req = cri::StopContainerRequest {
            container_id: id.into(),
            timeout,
        };
        self.call("StopContainer", |mut s| async move {
            s.stop_container(req).await
        });
        let req = cri::RemoveContainerRequest {
            container_id: id.into(),
        };
        self.call("RemoveContainer", |mut s| async move {
            s.remove_container(req).await
        });
    }

    /// StopPodSandbox and RemovePodSandbox.
    pub fn remove_sandbox(&mut self, id: &str) {
        let req = cri::StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.call("StopPodSandbox", |mut s| async move {
            s.stop_pod_sandbox(req).await
        });
        let req = cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.call("RemovePodSandbox", |mut s| async move {
            s.remove_pod_sandbox(req).await
        });
    }
}
