//! Checkpoint snapshots: at the end of an epoch the weights and Adam's moments are copied, on
//! the training thread, into two file images (the exact bytes of `model.bpk` and
//! `optimizer.bpk`) that are kept from one checkpoint to the next; the checkpoint thread then
//! only hashes them and writes them to disk.
//!
//! Handing the checkpoint thread the live tensors instead (shared, not copied) cost more in
//! every way on the development machine: the next optimizer step could no longer update the
//! weights and moments in place and made fresh 42 MB buffers for the dense layer, and the
//! writer made three more copies of its own (burn's record, the record's bytes, the staging of
//! unbuffered writes), every one in freshly mapped memory: page faults were over half of the
//! writer's CPU. One copy into memory that stays mapped replaces all of that.
//!
//! The files are burn's own, byte for byte, built by burn-pack's writer: the weights as
//! `ModuleRecord::into_bytes` writes them, the optimizer state as `OptimizerRecord::into_bytes`
//! does (the same tensors in the same order, scalars and parameter paths).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::ModuleOptimizer;
use burn::tensor::{Bool, Int, Tensor};
use rayon::prelude::*;

use crate::model::Net;
use crate::model::ops::{adam, shared_data};
use crate::run::checkpoint::{self, FilesOut, FilesWriter};

/// The memory page size the images are mapped in (4 KiB on x86-64 Linux; a larger one only
/// means some pages are written more than once).
const PAGE: usize = 4096;

/// The two file images of a checkpoint, reused from one checkpoint to the next.
#[derive(Debug, Default)]
struct Images {
    model: Image,
    optim: Image,
}

/// A file's bytes in memory aligned to [`checkpoint::BLOCK`] (so they can be written unbuffered
/// without staging): `len` bytes from `start` of `memory`.
#[derive(Debug, Default)]
struct Image {
    memory: Vec<u8>,
    start: usize,
    len: usize,
}

/// What a file image is filled from.
enum File {
    /// burn-pack's writer of the file.
    Pack(burn_pack::Writer),
    /// The file's bytes, made elsewhere.
    Bytes(burn::tensor::Bytes),
}

impl Image {
    /// Fill the image with `file`, growing it if needed.
    fn fill(&mut self, file: File) -> Result<(), String> {
        let size = match &file {
            File::Pack(writer) => writer.size().map_err(|e| e.to_string())?,
            File::Bytes(bytes) => bytes.len(),
        };
        if self.memory.len() < size + checkpoint::BLOCK {
            // Zeroed memory is mapped lazily, page by page, when first written: mapped here on
            // every core at once (writing a zero into each page changes nothing), not one page
            // at a time by the single-threaded copy below. Later fills find it mapped.
            self.memory = vec![0u8; size + checkpoint::BLOCK];
            self.memory.par_chunks_mut(1 << 20).for_each(|chunk| {
                for page in chunk.chunks_mut(PAGE) {
                    page[0] = 0;
                }
            });
            self.start = self
                .memory
                .as_ptr()
                .align_offset(checkpoint::BLOCK)
                .min(checkpoint::BLOCK);
        }
        self.len = size;
        let out = &mut self.memory[self.start..self.start + size];
        match file {
            File::Pack(writer) => writer.write_into(out).map_err(|e| e.to_string()),
            File::Bytes(bytes) => {
                out.copy_from_slice(&bytes);
                Ok(())
            }
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.memory[self.start..self.start + self.len]
    }
}

/// The trainer's checkpoint snapshots: [`Self::take`] copies the weights and optimizer state
/// into the file images and gives the checkpoint thread a writer of them. One set of images
/// serves every checkpoint of a run: a snapshot waits for the write of the one before.
#[derive(Debug, Default, Clone)]
pub struct Snapshots {
    images: Arc<Mutex<Images>>,
}

impl Snapshots {
    /// Copy `net`'s weights and `optim`'s state into the images (waiting for the previous
    /// checkpoint's write, if it still runs) and return the writer of their files.
    ///
    /// # Errors
    /// When burn-pack cannot lay the files out (a tensor of an unsupported kind).
    pub fn take(&self, net: &Net, optim: &ModuleOptimizer) -> Result<FilesWriter, String> {
        {
            let mut images = self.images.lock().unwrap_or_else(PoisonError::into_inner);
            let (tensors, paths) = Collector::tensors(net);
            images
                .model
                .fill(File::Pack(burn_pack::Writer::new(tensors)))?;
            images.optim.fill(optimizer_file(optim, &paths)?)?;
        }
        let images = Arc::clone(&self.images);
        Ok(Box::new(move |tmp: &Path| {
            let images = images.lock().unwrap_or_else(PoisonError::into_inner);
            let mut files = FilesOut::new(tmp);
            files
                .write(checkpoint::MODEL_FILE, images.model.bytes())
                .map_err(|e| e.to_string())?;
            files
                .write(checkpoint::OPTIM_FILE, images.optim.bytes())
                .map_err(|e| e.to_string())?;
            Ok(Some(files.hashes()))
        }))
    }
}

/// `optim`'s record file: written from the shared moments, or burn's own record's bytes where
/// the state is not [`adam::FusedAdam`]'s.
fn optimizer_file(optim: &ModuleOptimizer, paths: &[(u64, String)]) -> Result<File, String> {
    let Some(flat) = adam::flatten(optim) else {
        return optim
            .into_bytes()
            .map(File::Bytes)
            .map_err(|e| e.to_string());
    };
    // In the order `to_record` flattened them, as its own record lists them.
    let tensors: Vec<_> = flat
        .tensors
        .into_iter()
        .map(|(name, id, data)| {
            let (bytes, shape, dtype) = data.into_parts();
            burn_pack::Tensor::new(name, dtype, shape, Some(id), bytes)
        })
        .collect();
    let mut writer = burn_pack::Writer::new(tensors);
    for (name, value) in flat.scalars {
        writer = writer.with_scalar(&name, value);
    }
    for &(id, rank) in &flat.ranks {
        // `ModuleOptimizer::to_record`'s rank entry of each parameter.
        writer = writer.with_scalar(&format!("{id}.__rank"), rank.into());
        if let Some((_, path)) = paths.iter().find(|(p, _)| *p == id) {
            writer = writer.with_metadata(&id.to_string(), path);
        }
    }
    Ok(File::Pack(writer))
}

/// A module's parameters as `ModuleRecord` collects them (path, id, the saved form of the
/// values), their memory shared rather than copied.
#[derive(Default)]
struct Collector {
    path: Vec<String>,
    tensors: Vec<burn_pack::Tensor>,
    paths: Vec<(u64, String)>,
}

impl Collector {
    /// The tensors of `module`'s record file, and each parameter's path by id.
    fn tensors<M: Module>(module: &M) -> (Vec<burn_pack::Tensor>, Vec<(u64, String)>) {
        let mut c = Self::default();
        module.visit(&mut c);
        (c.tensors, c.paths)
    }

    fn record(&mut self, id: u64, data: burn::tensor::TensorData) {
        let path = self.path.join(".");
        let (bytes, shape, dtype) = data.into_parts();
        self.paths.push((id, path.clone()));
        self.tensors
            .push(burn_pack::Tensor::new(path, dtype, shape, Some(id), bytes));
    }
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.record(
            param.id.val(),
            shared_data(&param.transform_for_save().val()),
        );
    }

    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<D, Int>>) {
        self.record(param.id.val(), param.transform_for_save().val().into_data());
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
        self.record(param.id.val(), param.transform_for_save().val().into_data());
    }
}
