/* guard._speedups: the clean path's two questions, answered in C when a compiler was at hand.

   `guard/harmless.py` is the definition: its Python `HarmlessNames` and `marked` are what this
   module must agree with (`marked` is `guard.pairs.suspicious`), and the tests hold the two side
   by side (tests/test_speedups.py). Nothing here decides more than the Python does:
   `HarmlessNames.prefix` only ever skips lines the Python rule skips, and stops at anything
   unusual (a line that is not a tuple or list of two bytes objects), where the middleware's full
   inspection takes over.

   Why C: a clean request's 16 header names are new bytes objects, so Python's set lookup first
   hashes each with SipHash, and the loop around it runs in the interpreter; together that was
   most of the guard's cost on clean traffic. Here each name is hashed with a cheap keyed hash
   into a table of its own, probed a bounded number of times; a name the table cannot place
   falls back to the real set, so crafted colliding names cost at most that bound per line.

   Only reads request bytes, never writes them; every read is within the object's own size. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define PROBES 4         /* slots tried per name, in the table and on insert */
#define SLOTS_MIN 256    /* the table's size when empty; it doubles up to SLOTS_MAX */
#define SLOTS_MAX 16384  /* 4 x (the preset names + Names.CACHE_MAX): enough for every name */

typedef struct {
    PyObject *name; /* an exact bytes object, owned; NULL: empty slot */
    uint64_t hash;
} Slot;

typedef struct {
    PyObject_HEAD
    PyObject *names;    /* the set itself: what `in`, len() and iteration answer from */
    PyObject *verdicts; /* Names.table: raw name -> verdict */
    PyObject *cookie;   /* the verdict of names whose values are Cookie lines */
    Slot *slots;
    Py_ssize_t size;    /* a power of two */
} HarmlessNames;

static uint64_t seed; /* per process, from Python's own randomised hash */

static inline uint64_t mix(uint64_t h) {
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return h;
}

/* Keyed, over every byte: two names that differ anywhere hash apart but for chance. */
static inline uint64_t name_hash(const unsigned char *s, Py_ssize_t n) {
    uint64_t h = seed ^ ((uint64_t)n * 0x9e3779b97f4a7c15ULL);
    uint64_t w;
    while (n >= 8) {
        memcpy(&w, s, 8);
        h = mix(h ^ w);
        s += 8;
        n -= 8;
    }
    w = 0;
    memcpy(&w, s, (size_t)n);
    return mix(h ^ w ^ 0xff51afd7ed558ccdULL);
}

/* Does this (non-empty) slot hold the name `s` of `n` bytes and hash `h`? */
static inline int holds(const Slot *slot, uint64_t h, const unsigned char *s, Py_ssize_t n) {
    return slot->hash == h && PyBytes_GET_SIZE(slot->name) == n &&
           memcmp(PyBytes_AS_STRING(slot->name), s, (size_t)n) == 0;
}

static int known(HarmlessNames *self, const unsigned char *s, Py_ssize_t n) {
    uint64_t h = name_hash(s, n);
    for (Py_ssize_t i = 0; i < PROBES; i++) {
        Slot *slot = &self->slots[(h + (uint64_t)i) & (uint64_t)(self->size - 1)];
        if (slot->name == NULL)
            return 0;
        if (holds(slot, h, s, n))
            return 1;
    }
    return 0;
}

/* Place an exact bytes name in the table if one of its PROBES slots is free; else leave it to
   the set. */
static void place(Slot *slots, Py_ssize_t size, PyObject *name) {
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(name);
    Py_ssize_t n = PyBytes_GET_SIZE(name);
    uint64_t h = name_hash(s, n);
    for (Py_ssize_t i = 0; i < PROBES; i++) {
        Slot *slot = &slots[(h + (uint64_t)i) & (uint64_t)(size - 1)];
        if (slot->name == NULL) {
            Py_INCREF(name);
            slot->name = name;
            slot->hash = h;
            return;
        }
        if (holds(slot, h, s, n))
            return;
    }
}

static void empty_slots(Slot *slots, Py_ssize_t size) {
    for (Py_ssize_t i = 0; i < size; i++)
        Py_CLEAR(slots[i].name);
}

/* Grow to keep the table at most a quarter full; refill from the set. */
static int grow(HarmlessNames *self) {
    Py_ssize_t want = self->size;
    while (want < SLOTS_MAX && want < 4 * PySet_GET_SIZE(self->names))
        want *= 2;
    if (want == self->size)
        return 0;
    Slot *slots = PyMem_Calloc((size_t)want, sizeof(Slot));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *it = PyObject_GetIter(self->names);
    if (it == NULL) {
        PyMem_Free(slots);
        return -1;
    }
    PyObject *name;
    while ((name = PyIter_Next(it)) != NULL) {
        if (PyBytes_CheckExact(name))
            place(slots, want, name);
        Py_DECREF(name);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        empty_slots(slots, want);
        PyMem_Free(slots);
        return -1;
    }
    empty_slots(self->slots, self->size);
    PyMem_Free(self->slots);
    self->slots = slots;
    self->size = want;
    return 0;
}

static int add_name(HarmlessNames *self, PyObject *name) {
    if (!PyBytes_Check(name)) {
        PyErr_Format(PyExc_TypeError, "header names are bytes, not %.100s", Py_TYPE(name)->tp_name);
        return -1;
    }
    if (PySet_Add(self->names, name) < 0)
        return -1;
    if (4 * PySet_GET_SIZE(self->names) > self->size && self->size < SLOTS_MAX)
        return grow(self); /* places `name` too */
    if (PyBytes_CheckExact(name))
        place(self->slots, self->size, name);
    return 0;
}

/* Any of the marker words (msisdn, imsi, imei, calling), in any case: `guard.pairs.marked`.
   `| 0x20` folds A-Z onto a-z and nothing else onto a letter: for any byte c and lower-case
   letter l, (c | 0x20) == l only when c is l or its capital. */
static int has_marker(const unsigned char *s, Py_ssize_t n) {
#define LOW(k) (s[i + (k)] | 0x20)
    for (Py_ssize_t i = 0; i < n; i++) {
        switch (s[i] | 0x20) {
        case 'm':
            if (n - i >= 6 && LOW(1) == 's' && LOW(2) == 'i' && LOW(3) == 's' && LOW(4) == 'd' &&
                LOW(5) == 'n')
                return 1;
            break;
        case 'i':
            if (n - i >= 4 && LOW(1) == 'm' && (LOW(2) == 's' || LOW(2) == 'e') && LOW(3) == 'i')
                return 1;
            break;
        case 'c':
            if (n - i >= 7 && LOW(1) == 'a' && LOW(2) == 'l' && LOW(3) == 'l' && LOW(4) == 'i' &&
                LOW(5) == 'n' && LOW(6) == 'g')
                return 1;
            break;
        }
    }
    return 0;
#undef LOW
}

static PyObject *marked(PyObject *module, PyObject *raw) {
    if (PyBytes_Check(raw))
        return PyBool_FromLong(
            has_marker((const unsigned char *)PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw)));
    if (PyByteArray_Check(raw))
        return PyBool_FromLong(has_marker((const unsigned char *)PyByteArray_AS_STRING(raw),
                                          PyByteArray_GET_SIZE(raw)));
    PyErr_Format(PyExc_TypeError, "expected bytes, not %.100s", Py_TYPE(raw)->tp_name);
    return NULL;
}

/* How many leading lines of `headers` are plainly harmless (see harmless.py). */
static PyObject *prefix(HarmlessNames *self, PyObject *headers) {
    int is_list = PyList_CheckExact(headers);
    if (!is_list && !PyTuple_CheckExact(headers))
        return PyLong_FromSsize_t(0);
    Py_ssize_t i = 0;
    for (;; i++) {
        /* The size is read each time round; nothing below runs Python code that could change
           the list (bytes hashing and comparison are C), but this costs nothing. */
        Py_ssize_t count = is_list ? PyList_GET_SIZE(headers) : PyTuple_GET_SIZE(headers);
        if (i >= count)
            break;
        PyObject *line = is_list ? PyList_GET_ITEM(headers, i) : PyTuple_GET_ITEM(headers, i);
        PyObject *name, *value;
        if (PyTuple_CheckExact(line) && PyTuple_GET_SIZE(line) == 2) {
            name = PyTuple_GET_ITEM(line, 0);
            value = PyTuple_GET_ITEM(line, 1);
        } else if (PyList_CheckExact(line) && PyList_GET_SIZE(line) == 2) { /* daphne's lines */
            name = PyList_GET_ITEM(line, 0);
            value = PyList_GET_ITEM(line, 1);
        } else {
            break;
        }
        if (!PyBytes_CheckExact(name))
            break;
        if (known(self, (const unsigned char *)PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name)))
            continue;
        int found = PySet_Contains(self->names, name);
        if (found < 0)
            return NULL;
        if (found)
            continue;
        PyObject *verdict = PyDict_GetItemWithError(self->verdicts, name); /* borrowed */
        if (verdict == NULL && PyErr_Occurred())
            return NULL;
        if (verdict != self->cookie)
            break;
        if (!PyBytes_CheckExact(value) ||
            has_marker((const unsigned char *)PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value)))
            break;
    }
    return PyLong_FromSsize_t(i);
}

static PyObject *names_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"verdicts", "cookie", NULL};
    PyObject *verdicts, *cookie;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O:HarmlessNames", keywords, &PyDict_Type,
                                     &verdicts, &cookie))
        return NULL;
    HarmlessNames *self = (HarmlessNames *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->size = SLOTS_MIN;
    self->slots = PyMem_Calloc(SLOTS_MIN, sizeof(Slot));
    if (self->slots == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->names = PySet_New(NULL);
    if (self->names == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->verdicts = Py_NewRef(verdicts);
    self->cookie = Py_NewRef(cookie);
    return (PyObject *)self;
}

static int names_traverse(HarmlessNames *self, visitproc visit, void *arg) {
    Py_VISIT(self->verdicts);
    Py_VISIT(self->cookie);
    return 0;
}

static int names_clear_refs(HarmlessNames *self) {
    Py_CLEAR(self->verdicts);
    Py_CLEAR(self->cookie);
    return 0;
}

static void names_dealloc(HarmlessNames *self) {
    PyObject_GC_UnTrack(self);
    names_clear_refs(self);
    if (self->slots != NULL) {
        empty_slots(self->slots, self->size);
        PyMem_Free(self->slots);
    }
    Py_XDECREF(self->names);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *names_add(HarmlessNames *self, PyObject *name) {
    if (add_name(self, name) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *names_update(HarmlessNames *self, PyObject *iterable) {
    PyObject *it = PyObject_GetIter(iterable);
    if (it == NULL)
        return NULL;
    PyObject *name;
    while ((name = PyIter_Next(it)) != NULL) {
        int failed = add_name(self, name);
        Py_DECREF(name);
        if (failed) {
            Py_DECREF(it);
            return NULL;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *names_clear(HarmlessNames *self, PyObject *unused) {
    if (PySet_Clear(self->names) < 0)
        return NULL;
    empty_slots(self->slots, self->size);
    Py_RETURN_NONE;
}

static int names_contains(HarmlessNames *self, PyObject *name) {
    return PySet_Contains(self->names, name);
}

static Py_ssize_t names_len(HarmlessNames *self) { return PySet_GET_SIZE(self->names); }

static PyObject *names_iter(HarmlessNames *self) { return PyObject_GetIter(self->names); }

static PyObject *names_richcompare(HarmlessNames *self, PyObject *other, int op) {
    return PyObject_RichCompare(self->names, other, op);
}

static PyMethodDef names_methods[] = {
    {"prefix", (PyCFunction)prefix, METH_O,
     "How many leading header lines are plainly harmless."},
    {"add", (PyCFunction)names_add, METH_O, "Add a harmless name."},
    {"update", (PyCFunction)names_update, METH_O, "Add harmless names."},
    {"clear", (PyCFunction)names_clear, METH_NOARGS, "Forget every name."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods names_as_sequence = {
    .sq_length = (lenfunc)names_len,
    .sq_contains = (objobjproc)names_contains,
};

static PyTypeObject HarmlessNamesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "guard._speedups.HarmlessNames",
    .tp_doc = "The header names known harmless, and the clean path's scan over them.",
    .tp_basicsize = sizeof(HarmlessNames),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = names_new,
    .tp_dealloc = (destructor)names_dealloc,
    .tp_traverse = (traverseproc)names_traverse,
    .tp_clear = (inquiry)names_clear_refs,
    .tp_as_sequence = &names_as_sequence,
    .tp_iter = (getiterfunc)names_iter,
    .tp_richcompare = (richcmpfunc)names_richcompare,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_methods = names_methods,
};

static PyMethodDef module_methods[] = {
    {"marked", marked, METH_O, "Does `raw` hold a marker word (msisdn, imsi, imei, calling)?"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "guard._speedups", "C versions of guard.harmless.", -1, module_methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    PyObject *key = PyBytes_FromString("privacy-guard");
    if (key == NULL)
        return NULL;
    Py_hash_t salt = PyObject_Hash(key); /* randomised per process unless PYTHONHASHSEED is set */
    Py_DECREF(key);
    if (salt == -1)
        return NULL;
    seed = mix((uint64_t)salt ^ 0x2545f4914f6cdd1dULL);
    if (PyType_Ready(&HarmlessNamesType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "HarmlessNames", (PyObject *)&HarmlessNamesType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
