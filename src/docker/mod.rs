//! The Docker Engine API, through bollard, as sidecar uses it: find containers by label, pause and
//! unpause them, and read what the audit checks (inspect, image history, changes, daemon info). Blocking methods over a private single-threaded runtime, so callers stay simple.
use std::collections::HashMap;

pub mod files;

/// Errors talking to the Docker daemon.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The daemon cannot be reached.
    #[error("Docker API at {endpoint} unreachable ({problem}); mount /var/run/docker.sock (or set DOCKER_HOST)")]
    Unreachable {
        /// Socket or URL.
        endpoint: String,
        /// What failed.
        problem: String,
    },
    /// A request failed.
    #[error("Docker API: {what}: {problem}")]
    Request {
        /// What was being done.
        what: String,
        /// The error.
        problem: String,
    },
}

/// A container, as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Container {
    /// Full ID.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// `running`, `paused`, `exited`, ….
    pub state: String,
}

/// A connection to the Docker daemon.
pub struct Docker {
    rt: &'static tokio::runtime::Runtime,
    api: bollard::Docker,
}

impl std::fmt::Debug for Docker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Docker({})", endpoint())
    }
}

/// Where the daemon is expected: `DOCKER_HOST`, else the local socket.
pub fn endpoint() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

fn request(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let what = what.into();
    move |e| DockerError::Request {
        what,
        problem: e.to_string(),
    }
}

fn container_of(c: bollard::models::ContainerSummary) -> Option<Container> {
    let id = c.id?;
    let name = c
        .names
        .and_then(|n| n.into_iter().next())
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_else(|| id.chars().take(12).collect());
    let state = c.state.map(|s| s.to_string()).unwrap_or_default();
    Some(Container { id, name, state })
}

impl Docker {
    /// Connect (`DOCKER_HOST` or `/var/run/docker.sock`) and check the daemon answers.
    pub fn connect() -> Result<Docker, DockerError> {
        let unreachable = |problem: String| DockerError::Unreachable {
            endpoint: endpoint(),
            problem,
        };
        let rt = crate::runtime::get().map_err(|e| unreachable(e.to_string()))?;
        // bollard's client is made inside the runtime: its connection pool spawns there.
        let _guard = rt.enter();
        let api = bollard::Docker::connect_with_local_defaults().map_err(|e| unreachable(e.to_string()))?;
        let api = api.with_timeout(std::time::Duration::from_secs(30));
        rt.block_on(api.ping()).map_err(|e| unreachable(e.to_string()))?;
        Ok(Docker { rt, api })
    }

    /// Containers carrying `label` (`key` or `key=value`) in `states` (empty: all states).
    pub fn labelled(&self, label: &str, states: &[&str]) -> Result<Vec<Container>, DockerError> {
        let mut filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
        if !states.is_empty() {
            filters.insert("status".into(), states.iter().map(|s| s.to_string()).collect());
        }
        let opts = bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = self
            .rt
            .block_on(self.api.list_containers(Some(opts)))
            .map_err(request(format!("listing containers labelled {label}")))?;
        Ok(list.into_iter().filter_map(container_of).collect())
    }

    /// Running (and paused) containers.
    pub fn running(&self) -> Result<Vec<Container>, DockerError> {
        let opts = bollard::query_parameters::ListContainersOptions {
            all: false,
            ..Default::default()
        };
        let list = self
            .rt
            .block_on(self.api.list_containers(Some(opts)))
            .map_err(request("listing containers"))?;
        Ok(list.into_iter().filter_map(container_of).collect())
    }

    /// `docker inspect` of a container.
    pub fn inspect(&self, id: &str) -> Result<bollard::models::ContainerInspectResponse, DockerError> {
        self.rt
            .block_on(self.api.inspect_container(id, None))
            .map_err(request(format!("inspecting container {id}")))
    }

    /// `CreatedBy` of each layer of an image (`docker history --no-trunc`).
    pub fn history(&self, image: &str) -> Result<Vec<String>, DockerError> {
        let items = self
            .rt
            .block_on(self.api.image_history(image))
            .map_err(request(format!("reading the history of image {image}")))?;
        Ok(items.into_iter().map(|i| i.created_by).collect())
    }

    /// `docker diff` of a container.
    pub fn changes(&self, id: &str) -> Result<Vec<bollard::models::FilesystemChange>, DockerError> {
        Ok(self
            .rt
            .block_on(self.api.container_changes(id))
            .map_err(request(format!("reading the changes of container {id}")))?
            .unwrap_or_default())
    }

    /// `docker info`.
    pub fn info(&self) -> Result<bollard::models::SystemInfo, DockerError> {
        self.rt
            .block_on(self.api.info())
            .map_err(request("reading the daemon's info"))
    }

    /// Send the ID of every container that starts to `tx`, until `stop` is set, the receiver is
    /// gone, or the event stream ends (then `Ok`; the caller reconnects).
    pub fn watch_starts(
        &self,
        tx: &crossbeam_channel::Sender<String>,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<(), DockerError> {
        use futures_util::StreamExt;
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("event".to_string(), vec!["start".to_string()]),
        ]);
        let opts = bollard::query_parameters::EventsOptions {
            filters: Some(filters),
            ..Default::default()
        };
        self.rt.block_on(async {
            let mut events = self.api.events(Some(opts));
            loop {
                tokio::select! {
                    ev = events.next() => match ev {
                        Some(Ok(e)) => {
                            if let Some(id) = e.actor.and_then(|a| a.id) {
                                if tx.send(id).is_err() {
                                    return Ok(());
                                }
                            }
                        }
                        // The client's request timeout also ends an idle stream: reconnect.
                        Some(Err(bollard::errors::Error::RequestTimeoutError)) | None => return Ok(()),
                        Some(Err(e)) => return Err(request("watching container events")(e)),
                    },
                    _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            return Ok(());
                        }
                    }
                }
            }
        })
    }

    /// Whether the container is paused now.
    pub fn is_paused(&self, id: &str) -> Result<bool, DockerError> {
        let info = self
            .rt
            .block_on(self.api.inspect_container(id, None))
            .map_err(request(format!("inspecting container {id}")))?;
        Ok(info.state.and_then(|s| s.paused).unwrap_or(false))
    }

    /// Pause (freeze) a container.
    pub fn pause(&self, id: &str) -> Result<(), DockerError> {
        self.rt
            .block_on(self.api.pause_container(id))
            .map_err(request(format!("pausing container {id}")))
    }

    /// Unpause a container.
    pub fn unpause(&self, id: &str) -> Result<(), DockerError> {
        self.rt
            .block_on(self.api.unpause_container(id))
            .map_err(request(format!("unpausing container {id}")))
    }
}
