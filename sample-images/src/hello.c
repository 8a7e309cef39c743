/* Uses only what libgreet.so.1 has always had (GREET_1): starts fine in the sample image. */
void greet(const char *name);

int main(void) {
    greet("world");
    return 0;
}
