//! `JitBase`: the native half of what `@rjit.jit` returns.
//!
//! The Python class `rjit.JitFunction` subclasses it (so CPython gives instances a `__dict__`
//! for `functools.update_wrapper` and collects cycles through it); this base holds the wrapped
//! function, makes calls (with the hook installed for the call's duration) and binds as a
//! method, all without a Python frame of its own, so tracebacks show only the user's frames.

use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::sync::PyOnceLock;
use pyo3::PyTraverseError;

use crate::hook;

/// The wrapped function of an `@rjit.jit` callable.
#[pyclass(subclass, module = "rjit._rjit")]
pub struct JitBase {
    func: Option<Py<PyAny>>,
}

#[pymethods]
impl JitBase {
    #[new]
    #[pyo3(signature = (func, *_args, **_kwargs))]
    fn new(func: Py<PyAny>, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        JitBase { func: Some(func) }
    }

    /// The original Python function (Numba's name for it).
    #[getter]
    fn py_func(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.func(py).map(Bound::unbind)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let func = self.func(py)?;
        hook::with_scope(|| func.call(args, kwargs))
    }

    /// Binds like a function: `obj.method` gives a bound method of this callable.
    fn __get__<'py>(
        slf: Bound<'py, Self>,
        obj: Option<Bound<'py, PyAny>>,
        _owner: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match obj {
            Some(obj) if !obj.is_none() => {
                static METHOD_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
                let py = slf.py();
                let method_type = METHOD_TYPE.get_or_try_init(py, || {
                    py.import("types")?.getattr("MethodType").map(Bound::unbind)
                })?;
                method_type.bind(py).call1((slf, obj))
            }
            _ => Ok(slf.into_any()),
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(func) = &self.func {
            visit.call(func)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.func = None;
    }
}

impl JitBase {
    fn func<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.func {
            Some(func) => Ok(func.bind(py).clone()),
            None => Err(pyo3::exceptions::PyRuntimeError::new_err("rjit: this function wrapper was cleared")),
        }
    }
}
