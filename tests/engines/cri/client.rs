//! A blocking CRI v1 runtime-service client over containerd's unix socket
//! (the calls kubelet makes), on a single-threaded tokio runtime.

use std::path::{Path, PathBuf};

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

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
}
